"""English function words, dropped from the BM25 side of a query (the dense side keeps
the whole question).

Why our own short list: scikit-learn's and NLTK's lists also hold content words
("system", "fire", "computer", "bill", "call") that name things in questions. These are
only words that carry no topic; in Thai pages English boilerplate ("the", "of", "and" in
English titles and references) otherwise gives an English question's stray matches the
top BM25 score.
"""
from __future__ import annotations

ENGLISH_STOP = frozenset("""
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from
further had has have having he her here hers herself him himself his how i if in into is it
its itself just let me more most my myself no nor not now of off on once only or other our
ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom whose why will with would you your yours yourself
yourselves please tell give many much one ones called
""".split())


def is_stop(token: str) -> bool:
    """True for an English function word (tokens arrive lower-cased)."""
    return token in ENGLISH_STOP

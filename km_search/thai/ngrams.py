"""Thai character n-grams as extra BM25 tokens: lexical evidence that survives segmentation.

A word segmenter cuts the same Thai string differently in a question and in a passage
when a compound, a name or a misspelling is involved: "ปรุงอาหาร" is one token in one
place and "ปรุง|อาหาร" in another, and a typo ("สิงค์โปร" for "สิงคโปร์") shares no word
token with the right spelling at all. The characters still overlap. So each run of
consecutive Thai word tokens is joined back into its string and cut into overlapping
character n-grams, which join the words as BM25 tokens (marked with :data:`MARK` so they
never collide with a word). The n-grams are made from the token list, not the raw text,
so index time (the stored tokens) and query time (the query's tokens) call the same
function on the same kind of input.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator

#: Prefix of an n-gram token; no word token starts with it (words have a letter or digit
#: first, punctuation is dropped by :func:`km_search.thai.tokenize`).
MARK = "~"
_THAI_WORD = re.compile(r"^[\u0e01-\u0e4e]+$")


def _thai_runs(tokens: Iterable[str]) -> Iterator[str]:
    run: list[str] = []
    for tok in tokens:
        if _THAI_WORD.match(tok):
            run.append(tok)
        elif run:
            yield "".join(run)
            run = []
    if run:
        yield "".join(run)


def thai_ngrams(tokens: Iterable[str], n: int) -> list[str]:
    """Character ``n``-grams (marked) of each run of consecutive all-Thai tokens, in order,
    repeats kept (BM25 counts them); a run shorter than ``n`` gives none (its word token
    already matches it whole). ``n`` < 2 gives nothing."""
    if n < 2:
        return []
    out: list[str] = []
    for run in _thai_runs(tokens):
        out.extend(MARK + run[i:i + n] for i in range(len(run) - n + 1))
    return out


def with_ngrams(tokens: list[str], n: int) -> list[str]:
    """``tokens`` followed by their Thai character n-grams (none when ``n`` is 0)."""
    return tokens + thai_ngrams(tokens, n) if n else tokens


def is_ngram(token: str) -> bool:
    return token.startswith(MARK)


def token_weight(token: str, ngram_weight: float) -> float:
    """A BM25 query token's weight: ``ngram_weight`` for a character n-gram, 1 for a word
    (the one rule every BM25 backend and the coverage idf apply)."""
    return ngram_weight if is_ngram(token) else 1.0


def index_ngrams(cfg, passages: int) -> int:
    """The n-gram length a build of ``passages`` passages indexes under ``cfg`` (0 = none):
    ``thai_ngrams``, unless the corpus is past ``thai_ngrams_max_passages``, where n-grams
    cost too much (at 100k passages they made BM25 ~6x bigger on disk and ~3.5x slower to
    query; results/thai-ngrams.md) for a gain measured on a 3k-passage corpus."""
    limit = cfg.thai_ngrams_max_passages
    return cfg.thai_ngrams if cfg.thai_ngrams and (not limit or passages <= limit) else 0

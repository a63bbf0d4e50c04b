"""Snippets with highlight offsets.

We return plain text plus (start, end) spans instead of pre-marked HTML, so the CLI can
colour them and the web page can escape the text and then mark it: crawled text
never reaches a browser unescaped.
"""
from __future__ import annotations

import numpy as np

from km_search.thai import fold_digits
from km_search.thai.tokenize import segment


def highlight_spans(text: str, query_tokens: set[str]) -> list[tuple[int, int]]:
    """Spans of the words of ``text`` (segmented as at index time) that are query tokens.

    The text is folded once and words are compared as slices of it: folding word by word
    was 40 ``translate`` calls per hit, most of a BM25 query's time on small indexes. A
    window holding no query token as a substring is not segmented at all.
    """
    folded = fold_digits(text)
    same_length = len(folded) == len(text)
    if same_length and not any(t in folded for t in query_tokens):
        return []
    spans, off = [], 0
    for tok in segment(text, keep_whitespace=True):
        n = len(tok)
        word = folded[off:off + n].strip() if same_length else fold_digits(tok.strip())
        if word and word in query_tokens:
            spans.append((off, off + n))
        off += n
    return spans


def _candidates(text: str, query_tokens: set[str]) -> list[tuple[int, int]]:
    """Substring occurrences of query words: cheap, may include partial-word matches."""
    folded = fold_digits(text)
    if len(folded) != len(text):  # a lower-casing that changes length: fall back to exact
        return highlight_spans(text, query_tokens)
    out = []
    for tok in query_tokens:
        i = folded.find(tok)
        while i >= 0:
            out.append((i, i + len(tok)))
            i = folded.find(tok, i + 1)
    return sorted(out)


def make_snippet(text: str, query_tokens: set[str], width: int = 240
                 ) -> tuple[str, list[tuple[int, int]]]:
    """The ``width``-char window of ``text`` with most query words, and their spans.

    The window is chosen from cheap substring matches; only the window is segmented to
    get exact word spans (segmenting whole passages per hit cost ~1 ms each).
    """
    if len(text) <= width:
        return text, highlight_spans(text, query_tokens)
    cands = _candidates(text, query_tokens)
    best_start = 0
    if cands:  # the window starting a little before a match that holds the most matches
        a, b = np.array(cands).T
        starts = np.maximum(0, a - width // 4)
        n = ((a[None, :] >= starts[:, None]) & (b[None, :] <= starts[:, None] + width)).sum(1)
        best_start = int(starts[int(n.argmax())])  # the first best, as a plain loop would
    # move the window edges to spaces where possible
    if best_start > 0:
        sp = text.rfind(" ", max(0, best_start - 20), best_start + 1)
        best_start = sp + 1 if sp >= 0 else best_start
    end = min(len(text), best_start + width)
    sp = text.find(" ", end - 20, end + 20)
    end = sp if sp > 0 else end
    pre = "…" if best_start > 0 else ""
    post = "…" if end < len(text) else ""
    spans = highlight_spans(text[best_start:end], query_tokens)
    return pre + text[best_start:end] + post, [(a + len(pre), b + len(pre)) for a, b in spans]

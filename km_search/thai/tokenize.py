"""Word tokenisation for BM25 and word counts.

Thai has no spaces between words, so generic tokenisers (bm25s, SQLite FTS5) cut
"การจัดการความรู้" into meaningless pieces. We segment with PyThaiNLP's nlpo3 engine
(Rust, ~1.4M chars/s, same dictionary and output as newmm) and fall back to newmm if
nlpo3 is missing. The SAME function runs at index and at query time.
"""
from __future__ import annotations

import re
from functools import lru_cache

from pythainlp.tokenize import word_tokenize

from .normalize import fold_digits, normalize

_WORDLIKE = re.compile(r"[0-9A-Za-z\u0e01-\u0e4e\u00c0-\u024f]")
_ENGINE: str | None = None


def _engine() -> str:
    global _ENGINE
    if _ENGINE is None:
        try:
            word_tokenize("ทดสอบ", engine="nlpo3")
            _ENGINE = "nlpo3"
        except Exception:  # pragma: no cover - nlpo3 wheel missing
            _ENGINE = "newmm"
    return _ENGINE


def engine_name() -> str:
    return _engine()


def segment(text: str, *, keep_whitespace: bool = False) -> list[str]:
    """The words of ``text`` as it stands (not normalised), cut by the engine the index
    uses. Every module that segments Thai calls this, so chunking, snippets and PDF repair
    cannot drift to another engine than the search tokens; ``keep_whitespace=True``
    keeps the spaces, so the pieces add up to ``text`` (offsets)."""
    return word_tokenize(text, engine=_engine(), keep_whitespace=keep_whitespace)


def tokenize(text: str, *, normalized: bool = False) -> list[str]:
    """Search tokens: normalised, lower-cased, Thai digits folded, no punctuation."""
    if not normalized:
        text = normalize(text)
    text = fold_digits(text)
    out = []
    for tok in segment(text):
        tok = tok.strip()
        if tok and _WORDLIKE.search(tok):
            out.append(tok)
    return out


@lru_cache(maxsize=4096)
def _cached_count(text: str) -> int:
    return sum(1 for t in segment(text) if t.strip())


def word_count(text: str) -> int:
    """Number of words (Thai words or whitespace-separated tokens) in text."""
    return _cached_count(text)

"""Normalise Thai (and mixed) text before display-independent processing.

Why not plain NFKC: it decomposes SARA AM (U+0E33) into NIKHAHIT + SARA AA, which
breaks Thai words; we use NFC and fold only full-width ASCII. We also undo the
commonest damage from web pages and PDF extraction: zero-width characters,
NIKHAHIT+SARA AA written as two characters, stray spaces before vowels and tone
marks ("ส าเร จ"), and doubled or mis-ordered marks (PyThaiNLP's normalize).
"""
from __future__ import annotations

import re
import unicodedata

from pythainlp.util import normalize as _pythainlp_normalize

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
# C0/C1 controls except tab and newline
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Thai marks that can never start a word: above/below vowels, tone marks, and the
# following vowels ะ า ำ. A space before one of them is extraction damage.
_MARKS = "\u0e31\u0e34-\u0e3a\u0e47-\u0e4e\u0e30\u0e32\u0e33"
_SPACE_BEFORE_MARK = re.compile(rf"(?<=[\u0e01-\u0e2e\u0e31\u0e34-\u0e3a\u0e47-\u0e4e]) +(?=[{_MARKS}])")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}


_THAI_DIGIT = re.compile("[\u0e50-\u0e59]")
# lone UTF-16 surrogates (a JSON "\\ud800" escape decodes to one): no UTF-8 form, so the
# Rust segmenter (nlpo3), SQLite and every encoder would raise on them
_SURROGATE = re.compile("[\ud800-\udfff]")


def thai_to_arabic_digits(text: str) -> str:
    # str.translate with a table walks every character in Python-level lookups (~35 us
    # per passage); most text has no Thai digit, which the regex finds out in C.
    return text.translate(_THAI_DIGITS) if _THAI_DIGIT.search(text) else text


def normalize(text: str) -> str:
    """Clean text for indexing and display: same meaning, canonical characters."""
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    text = unicodedata.normalize("NFC", text)
    text = text.translate(_ZERO_WIDTH).translate(_FULLWIDTH)
    text = _CONTROL.sub(" ", text)
    text = text.replace("\u0e4d\u0e32", "\u0e33")  # ํา -> ำ
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_MARK.sub("", text)
    text = _pythainlp_normalize(text)
    return text


def fold_digits(text: str) -> str:
    """Matching form for search: Thai digits to Arabic and lower case."""
    return thai_to_arabic_digits(text).lower()

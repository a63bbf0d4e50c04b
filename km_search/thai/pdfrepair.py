"""Repair Thai text extracted from government PDFs (TH Sarabun and similar fonts).

Typical damage, and what is done about it:

* Private-Use-Area glyphs (U+F700-U+F71A, the shifted tone marks and vowels of Thai
  fonts) -> mapped back to the standard characters.
* NIKHAHIT + SARA AA written as two characters ("ํา") -> SARA AM ("ำ").
* Marks in the wrong order (tone mark before an upper vowel) -> swapped; doubled marks
  -> one.
* Stray spaces before upper/lower vowels and tone marks ("ที ่") -> removed.
* SARA AM lost as " า" ("ส าเร จ") and MAITAIKHU lost as a space ("เร จ") -> decided
  with the PyThaiNLP dictionary: every candidate ("สำ"/"สา", "เร จ"/"เรจ"/"เร็จ")
  is segmented (by the index's own segmenter, ``tokenize.segment``) and the one with the
  fewest unknown characters (then fewest words) wins; a real space is kept on a tie.
* SARA AA extracted as SARA AM ("กำร" for "การ"), which happens to whole documents
  whose font maps the glyph wrongly: only when a text has more ำ than า (never the
  case in clean Thai), each ำ is decided by the dictionary as above.

The caller keeps the original text (``Document.metadata["raw_text"]``); this function
only returns the repaired copy.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from .tokenize import segment

_PUA = {
    0xF700: "\u0e10", 0xF701: "\u0e34", 0xF702: "\u0e35", 0xF703: "\u0e36", 0xF704: "\u0e37",
    0xF705: "\u0e48", 0xF706: "\u0e49", 0xF707: "\u0e4a", 0xF708: "\u0e4b", 0xF709: "\u0e4c",
    0xF70A: "\u0e48", 0xF70B: "\u0e49", 0xF70C: "\u0e4a", 0xF70D: "\u0e4b", 0xF70E: "\u0e4c",
    0xF70F: "\u0e0d", 0xF710: "\u0e31", 0xF711: "\u0e4d", 0xF712: "\u0e47", 0xF713: "\u0e48",
    0xF714: "\u0e49", 0xF715: "\u0e4a", 0xF716: "\u0e4b", 0xF717: "\u0e4c", 0xF718: "\u0e38",
    0xF719: "\u0e39", 0xF71A: "\u0e3a",
}
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_CONS = "\u0e01-\u0e2e"
_UPPER_LOWER = "\u0e31\u0e34-\u0e3a\u0e47\u0e4d"  # above/below vowels, maitaikhu, nikhahit
_TONES = "\u0e48-\u0e4c"  # tone marks and thanthakhat
_THAI = "\u0e01-\u0e4e"
_TONE_BEFORE_VOWEL = re.compile(rf"([{_TONES}])([\u0e31\u0e34-\u0e37\u0e47])")
_DOUBLED = re.compile(rf"([{_UPPER_LOWER}{_TONES}])\1+")
_SPACE_BEFORE_MARK = re.compile(rf"(?<=[{_THAI}]) +(?=[{_UPPER_LOWER}{_TONES}\u0e30])")
_SPACE_AA = re.compile(rf"(?<=[{_CONS}\u0e48-\u0e4b]) +\u0e32")
_THAI_SPACE = re.compile(rf"(?<=[{_THAI}]) (?=[{_CONS}\u0e40-\u0e44])")
_RUN = 24  # characters of context on each side


@lru_cache(maxsize=1)
def _dictionary() -> frozenset[str]:
    from pythainlp.corpus import thai_words

    return frozenset(thai_words())


@lru_cache(maxsize=65536)
def _cost(s: str) -> tuple[int, int]:
    """(unknown Thai characters, words) of a string without spaces; lower is better."""
    words = _dictionary()
    unknown = n = 0
    for tok in segment(s):
        n += 1
        if tok not in words and re.search(f"[{_THAI}]", tok):
            unknown += len(tok)
    return unknown, n


def _left(text: str, i: int) -> str:
    """The Thai run ending at i (exclusive), at most _RUN characters."""
    j = i
    while j > 0 and i - j < _RUN and re.match(f"[{_THAI}]", text[j - 1]):
        j -= 1
    return text[j:i]


def _right(text: str, i: int) -> str:
    j = i
    while j < len(text) and j - i < _RUN and re.match(f"[{_THAI}]", text[j]):
        j += 1
    return text[i:j]


def _total(parts: list[str]) -> tuple[int, int]:
    u = n = 0
    for p in parts:
        if p:
            a, b = _cost(p)
            u, n = u + a, n + b
    return u, n


def _fix_space_aa(text: str) -> str:
    """' า' after a consonant: it was SARA AM ('ส าเร็จ') or a stray space ('ก าร')."""
    out, pos = [], 0
    for m in _SPACE_AA.finditer(text):
        cur = "".join(out) + text[pos:m.start()]
        left, right = _left(cur, len(cur)), _right(text, m.end())
        rights = [right]
        after = m.end() + len(right)
        if text[after:after + 1] == " " and re.match(f"[{_CONS}]", text[after + 1:after + 2]):
            nxt = _right(text, after + 1)
            rights += [right + nxt, right + "\u0e47" + nxt]
        am = min(_total([left + "\u0e33" + r]) for r in rights)
        aa = min(_total([left + "\u0e32" + r]) for r in rights)
        # a real space never comes before SARA AA, a lost NIKHAHIT often does: AM on a tie
        out.append(text[pos:m.start()] + ("\u0e33" if am <= aa else "\u0e32"))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def _fix_spaces(text: str) -> str:
    """A space between Thai letters: keep it, drop it, or it was a lost MAITAIKHU."""
    out, pos = [], 0
    for m in _THAI_SPACE.finditer(text):
        cur = "".join(out) + text[pos:m.start()]
        left, right = _left(cur, len(cur)), _right(text, m.end())
        if not left or not right or text[m.end() + len(right):m.end() + len(right) + 1] == ".":
            continue  # nothing to join, or an abbreviation ("ก.พ.ร.")
        keep = _total([left, right])
        best, choice = keep, " "
        for ins in ("", "\u0e47"):
            if ins and not re.search(f"[{_CONS}]$", left):
                continue
            c = _total([left + ins + right])
            # joining must remove unknown characters, not just save a word
            if c[0] < best[0]:
                best, choice = c, ins
        out.append(text[pos:m.start()] + choice)
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def _fix_am_for_aa(text: str) -> str:
    """In a text whose SARA AA came out as SARA AM, decide every ำ with the dictionary."""
    chars = list(text)
    for i, ch in enumerate(chars):
        if ch != "\u0e33":
            continue
        cur = "".join(chars)
        left, right = _left(cur, i), _right(cur, i + 1).replace("\u0e33", "\u0e32")
        am = _total([left + "\u0e33" + right])
        aa = _total([left + "\u0e32" + right])
        if aa < am:
            chars[i] = "\u0e32"
    return "".join(chars)


def damage_score(text: str) -> float:
    """Share of Thai characters next to typical extraction damage (0 for clean text)."""
    thai = len(re.findall(f"[{_THAI}]", text)) or 1
    bad = len(_SPACE_BEFORE_MARK.findall(text)) + len(_SPACE_AA.findall(text))
    bad += sum(1 for c in text if 0xF700 <= ord(c) <= 0xF71A)
    if text.count("\u0e33") > text.count("\u0e32"):
        bad += text.count("\u0e33")
    return bad / thai


def repair_thai_pdf_text(text: str) -> str:
    """Repaired copy of Thai text extracted from a PDF (see the module docstring)."""
    if not text:
        return text
    text = text.translate(_PUA).translate(_ZERO_WIDTH)
    text = unicodedata.normalize("NFC", text).replace("\u0e4d\u0e32", "\u0e33")
    text = _TONE_BEFORE_VOWEL.sub(r"\2\1", text)
    text = _DOUBLED.sub(r"\1", text)
    text = _SPACE_BEFORE_MARK.sub("", text)
    if not re.search(f"[{_THAI}]", text):
        return text
    damaged_am = text.count("\u0e33") > max(3, text.count("\u0e32"))
    if damaged_am:
        text = _fix_am_for_aa(text)
    text = _fix_space_aa(text)
    text = _fix_spaces(text)
    return text

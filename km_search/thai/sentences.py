"""Rule-based Thai/English sentence splitting, fast enough for bulk chunking.

Thai marks sentence (and clause) ends with a space, not punctuation; but spaces
also sit inside dates ("7 ธันวาคม 2564"), names, abbreviations ("ก.พ.ร. ได้...")
and lists. PyThaiNLP's CRF splitter cuts "ก.พ.ร." apart and runs at ~6k chars/s, so
we use rules: newlines always end a sentence; a space ends one when the sentence so
far is long enough, the next word starts with a Thai letter, and neither side is a
number, an abbreviation or a word that announces a continuation.
"""
from __future__ import annotations

import re

_MIN_CHARS = 40
_CONTINUATIONS = ("ที่", "วันที่", "เรื่อง", "ได้แก่", "คือ", "เช่น", "และ", "หรือ", "ของ",
                  "โดย", "ณ", "จาก", "นาย", "นาง", "นางสาว", "ดร.", "จังหวัด", "กรม", "ให้")
_SPACE = re.compile(r"[ \t]+")
_THAI_START = re.compile(r"[\u0e01-\u0e2e\u0e40-\u0e44\"“(]")


def _ok_to_break(left: str, right: str) -> bool:
    prev_word = left.rsplit(" ", 1)[-1]
    if not right or not _THAI_START.match(right):
        return False
    if prev_word.endswith(_CONTINUATIONS):
        return False
    if prev_word[-1:].isdigit():
        return False
    if prev_word.endswith(".") and len(prev_word) <= 8:  # ก.พ.ร. / พ.ศ. / ผศ.ดร.
        return False
    return True


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Return (start, end) character spans of sentences in ``text``, in order."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        line_start, line_end = pos, pos + len(line)
        pos = line_end + 1
        stripped = line.strip()
        if not stripped:
            continue
        cur = line_start + (len(line) - len(line.lstrip()))
        end_of_line = line_start + len(line.rstrip())
        for m in _SPACE.finditer(text, cur, end_of_line):
            left = text[cur:m.start()]
            if len(left) < _MIN_CHARS:
                continue
            if _ok_to_break(left, text[m.end():m.end() + 1]):
                spans.append((cur, m.start()))
                cur = m.end()
        if cur < end_of_line:
            spans.append((cur, end_of_line))
    return spans

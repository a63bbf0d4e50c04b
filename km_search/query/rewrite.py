"""Conversational follow-ups: rewrite an elliptical or pronoun question from the history.

"จังหวัดขอนแก่นทำอย่างไรจึงได้รางวัล PMQA 4.0" then "แล้วพังงาล่ะ" should search
"จังหวัดพังงาทำอย่างไรจึงได้รางวัล PMQA 4.0": the subject is carried over and the new
province replaces the old one. Rules, not a model (no generator ships offline):

- A question is a follow-up when it opens with a follow-up marker ("แล้ว", "ส่วน",
  "what about", "and"), ends with a follow-up particle ("ล่ะ", "ละ", "หล่ะ"), refers back
  with a pronoun ("ที่นั่น", "ดังกล่าว", "it", "they", "there"), or is little more than a
  name (a province, agency, year or programme) on its own.
- If it names something of a kind the previous question also named (a province, an
  agency, a year, a fiscal year, a PMQA category), the previous question is repeated
  with the old name replaced by the new one.
- Otherwise its own words are searched together with what the previous question named
  (its understood items, or, when it named nothing, the previous question itself).

The history is resolved in order, so a chain of follow-ups keeps its subject.
"""
from __future__ import annotations

import re

from km_search.query.understand import Understood, understand

_TH_OPEN = re.compile(r"^\s*(?:แล้วก็|แล้ว|และ|ส่วน|ถ้าเป็น|กรณี(?:ของ)?|เฉพาะ)\s*")
_TH_CLOSE = re.compile(r"\s*(?:ล่ะ|ละ|หล่ะ|หละ|บ้างล่ะ|ด้วย)?\s*(?:ครับ|คะ|ค่ะ|จ้ะ|จ๊ะ)?\s*[?？]*\s*$")
_TH_PARTICLE_END = re.compile(r"(?:ล่ะ|ละ|หล่ะ|หละ)\s*(?:ครับ|คะ|ค่ะ)?\s*[?？]*\s*$")
_TH_PRONOUN = re.compile(r"ที่นั่น|ที่นี่|ดังกล่าว|เรื่องนี้|เรื่องนั้น|โครงการนี้|โครงการนั้น|"
                         r"หน่วยงานนี้|หน่วยงานนั้น|จังหวัดนี้|จังหวัดนั้น|พวกเขา|เขา|มัน")
_EN_OPEN = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+|^\s*and\s+(?:in|for)?\s*|"
                      r"^\s*(?:same|likewise)\s+(?:for|in)\s+", re.I)
_EN_PRONOUN = re.compile(r"\b(?:it|its|they|them|their|there|that|this|those|these|he|she|"
                         r"his|her)\b", re.I)
_SHORT = 12  # characters left after removing names and markers: "little more than a name"


def _strip_markers(q: str) -> str:
    q = _TH_OPEN.sub("", q)
    q = _EN_OPEN.sub("", q)
    q = _TH_CLOSE.sub("", q)
    return q.strip(" ?？")


def _residue(q: str, items: list[Understood]) -> str:
    """What is left of a question without its names and follow-up markers."""
    rest = _strip_markers(q)
    for it in items:
        rest = rest.replace(it.text, " ")
    return re.sub(r"\s+", " ", rest).strip()


def is_follow_up(query: str, items: list[Understood] | None = None) -> bool:
    items = understand(query) if items is None else items
    if _TH_OPEN.match(query) and _TH_OPEN.match(query).group(0).strip():
        return True
    if _EN_OPEN.match(query) and _EN_OPEN.match(query).group(0).strip():
        return True
    if _TH_PARTICLE_END.search(query) or _TH_PRONOUN.search(query):
        return True
    if _EN_PRONOUN.search(query) and len(query.split()) <= 8:
        return True
    return bool(items) and len(_residue(query, items)) <= _SHORT


def _replace(prev: str, old: Understood, new: Understood) -> str:
    """``prev`` with the words of ``old`` replaced by the name of ``new``."""
    if old.kind == "province":
        # keep the prefix the previous question used ("จังหวัด"), change the name
        prefix = old.text[: len(old.text) - len(old.value)] if old.text.endswith(old.value) else ""
        repl = prefix + new.value if prefix else (new.value if not old.text.isascii() else new.text)
        return prev.replace(old.text, repl, 1)
    return prev.replace(old.text, new.text, 1)


def rewrite(query: str, history: list[str] | tuple[str, ...] = ()) -> str | None:
    """The standalone question a follow-up stands for, or None when ``query`` is not a
    follow-up (or there is no history to resolve it from)."""
    prev = None
    for h in history or ():
        h = (h or "").strip()
        if not h:
            continue
        prev = (_resolve(h, prev) or h) if prev else h
    if not prev:
        return None
    return _resolve(query.strip(), prev)


def _resolve(query: str, prev: str) -> str | None:
    items = understand(query)
    if not is_follow_up(query, items):
        return None
    prev_items = understand(prev)
    out, replaced = prev, False
    for new in items:
        old = next((p for p in prev_items if p.kind == new.kind and p.value != new.value), None)
        if old is not None:
            out, replaced = _replace(out, old, new), True
    rest = _residue(query, items)
    if replaced:
        return out if not rest else f"{out} {rest}"
    subject = " ".join(dict.fromkeys(p.text for p in prev_items)) or prev
    own = _strip_markers(query)
    if not own:
        return None
    return f"{subject} {own}".strip()

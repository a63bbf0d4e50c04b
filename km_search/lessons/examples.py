"""Example questions for the chat page, written from the collection's own lesson cards.

A fixed list of sample questions goes stale as soon as the collection changes; questions
built from the cards always name a programme or province the index really holds, and ask
about a field (success factors, results, obstacles, recommendations) the card really has,
so every example can be answered.
"""
from __future__ import annotations

from typing import Callable, Iterable, Literal

from .cards import LessonCard

Lang = Literal["th", "en"]

# field -> (Thai template, English template); {x} is a programme, case or province name
TEMPLATES: dict[str, tuple[str, str]] = {
    "success_factors": ("ปัจจัยความสำเร็จของ{x}คืออะไร", "What were the success factors of {x}?"),
    "results": ("ผลการดำเนินงานของ{x}เป็นอย่างไร", "What were the results of {x}?"),
    "obstacles": ("{x}พบปัญหาอุปสรรคอะไรบ้าง", "What obstacles did {x} face?"),
    "recommendations": ("มีข้อเสนอแนะอะไรจาก{x}", "What recommendations came out of {x}?"),
}
_MAX_NAME = 40  # a longer programme name makes an unreadable example


def _subject(card: LessonCard, field: str, lang: Lang) -> str | None:
    """The name to ask about: the programme named in the field's first cited sentence,
    else the case province, else the card's first short programme name."""
    items = card.items(field)
    cited = " ".join(c.text for c in items[0].citations) if items else ""
    progs = [p.text for p in card.programmes if len(p.text) <= _MAX_NAME]
    for p in progs:
        if p in cited:
            return p
    provs = [p.text for p in card.provinces]
    if provs:
        return f"จังหวัด{provs[0]}" if lang == "th" else f"{provs[0]} province"
    return progs[0] if progs else None


def example_questions(cards: Iterable[LessonCard], lang: Lang = "th", n: int = 6,
                      answerable: Callable[[str], bool] | None = None) -> list[str]:
    """Up to ``n`` distinct questions, one per card first (the kind of question rotates
    from card to card so the examples differ), then more rounds if there are fewer cards
    than n. ``answerable`` (e.g. "the answer builder finds an answer") drops a question
    that the collection would refuse: an example that is refused teaches nothing."""
    cards = list(cards)
    used = {f: 0 for f in TEMPLATES}
    asked: set[tuple[str, str]] = set()
    out: list[str] = []
    for _ in TEMPLATES:
        for card in cards:
            if len(out) >= n:
                return out
            have = [f for f in TEMPLATES if card.items(f) and (card.doc_id, f) not in asked]
            if not have:
                continue
            field = min(have, key=lambda f: used[f])  # the kind asked least so far
            asked.add((card.doc_id, field))
            x = _subject(card, field, lang)
            if not x:
                continue
            if lang == "th":  # a Latin-script name is set off by spaces, as Thai writers do
                x = (" " if x[0].isascii() else "") + x + (" " if x[-1].isascii() else "")
            q = " ".join(TEMPLATES[field][0 if lang == "th" else 1].format(x=x).split())
            if q not in out and (answerable is None or answerable(q)):
                used[field] += 1
                out.append(q)
    return out

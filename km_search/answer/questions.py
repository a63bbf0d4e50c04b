"""What a question asks: its language, its type and the entity (province) it is about.

Types (first match wins, in this order): comparison, factors, obstacles,
recommendations, how_many, who, when, why, how, list, definition, other. The type
decides which sentences answer (a "who" question wants a person and a role, a "how
many" question a figure) and, for factors/obstacles/recommendations, that lesson-card
items of the retrieved documents are used.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from km_search.thai.glossary import PROVINCES_EN
from km_search.thai.provinces import PROVINCES

TYPES: tuple[tuple[str, re.Pattern], ...] = tuple((name, re.compile(rx, re.I)) for name, rx in (
    ("comparison", r"เปรียบเทียบ|ต่างกัน|แตกต่าง|เหมือนหรือต่าง|เทียบกับ|compare|comparison|differ|versus|\bvs\.?\b"),
    ("factors", r"ปัจจัย|เคล็ดลับ|เคล็ดที่ไม่ลับ|กุญแจ|อะไรทำให้\S*สำเร็จ|ทำไม\S*สำเร็จ|สำเร็จได้(?:อย่างไร|เพราะ)|"
                r"success|key to|what made|why did .* (?:work|succeed)|enabl"),
    ("obstacles", r"ปัญหา|อุปสรรค|ข้อจำกัด|ความท้าทาย|ติดขัด|obstacle|challenge|problem|difficult|barrier"),
    ("recommendations", r"ข้อเสนอแนะ|ข้อแนะนำ|ควรทำ|ควร\S*อย่างไร|บทเรียน|recommend|advice|should|lessons?"),
    ("how_many", r"กี่|จำนวนเท่าไร|จำนวนเท่าใด|มากน้อยเพียงใด|ร้อยละเท่าไร|how many|how much|number of|what percentage"),
    ("who", r"ใคร|ผู้ใด|บุคคลใด|who\b|whom"),
    ("when", r"เมื่อไร|เมื่อไหร่|เมื่อใด|วันที่เท่าไร|วันใด|ปีใด|ปีไหน|when\b|what date|what year|which year"),
    ("why", r"ทำไม|เพราะอะไร|เหตุใด|สาเหตุ|why\b"),
    ("how", r"อย่างไร|ยังไง|วิธีการ|วิธี|ทำอะไร|how\b"),
    ("list", r"อะไรบ้าง|มีอะไร|ได้แก่อะไร|ใดบ้าง|ไหนบ้าง|\blist\b|which\b|what are"),
    ("definition", r"คืออะไร|หมายถึง|คือ|what is|what does .* mean|define|definition|meaning"),
))
LISTING_TYPES = ("factors", "obstacles", "recommendations", "list")
LESSON_FIELDS = {"factors": "success_factors", "obstacles": "obstacles",
                 "recommendations": "recommendations"}
_PROV_RX = re.compile("|".join(sorted(map(re.escape, PROVINCES), key=len, reverse=True)))
_PROV_EN = re.compile(r"\b(" + "|".join(sorted(map(re.escape, PROVINCES_EN), key=len, reverse=True))
                      + r")\b", re.I)


def lang_of(text: str) -> str:
    return "th" if re.search(r"[\u0e00-\u0e7f]", text) else "en"


@dataclass
class Question:
    text: str
    lang: str
    kind: str
    provinces: list[str] = field(default_factory=list)  # Thai names, in order of mention

    @property
    def entity(self) -> str | None:
        return self.provinces[0] if self.provinces else None


def provinces_of(text: str) -> list[str]:
    found = [(m.start(), m.group(0)) for m in _PROV_RX.finditer(text)]
    found += [(m.start(), PROVINCES_EN[m.group(1).lower()]) for m in _PROV_EN.finditer(text)]
    return list(dict.fromkeys(p for _, p in sorted(found)))


def question_type(text: str) -> str:
    for name, rx in TYPES:
        if rx.search(text):
            return name
    return "other"


def understand(text: str) -> Question:
    return Question(text, lang_of(text), question_type(text), provinces_of(text))

"""Choosing the sentences of an extractive answer.

Units are whole sentences: the project's Thai splitter cuts at spaces, which often
leaves clauses ("…ได้รับรางวัล 4.0 โดยมี"); a clause that ends or starts with a
connective is joined to its neighbour, so an answer never ends in mid-sentence. A
sentence that announces a list ("… 3 ประการ ได้แก่", "… ดังนี้") takes the items that
follow it, so an enumeration is given in full. Sentences are scored by query words
they share, by the question type's evidence (a figure for "how many", a person for
"who", a reason for "why" …) and by the entity asked: a sentence about another
province of the same document is pushed down, one about the asked province up.
Maximal marginal relevance then keeps the chosen sentences from repeating each other.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from km_search.lessons.roles import CUES
from km_search.models import Hit
from km_search.thai import split_sentences, tokenize
from km_search.thai.provinces import PROVINCES

from .questions import Question

_PROV_RX = re.compile("|".join(sorted(map(re.escape, PROVINCES), key=len, reverse=True)))
_ENDS_OPEN = re.compile(r"(?:โดยมี|โดย|และ|หรือ|ซึ่ง|ที่|คือ|ได้แก่|เช่น|ของ|ให้|กับ|ใน|เพื่อ|จาก|ด้วย|ว่า|"
                        r"การดำเนินการ|โครงการ|เรื่อง|หัวข้อ|แนวทาง|ชื่อ|,)$")
_STARTS_CONT = re.compile(r"^(?:และ|หรือ|ซึ่ง|โดย|ทำให้|เพื่อ|ที่|จึง|แต่|รวมถึง|รวมทั้ง|ตลอดจน|คือ|ได้แก่|"
                          r"เช่น|ด้วย|จนได้|จน|อีกทั้ง|ประกอบด้วย|ดังนี้|เป็นต้น|ตั้งแต่)")
_ANNOUNCES = re.compile(r"(?:ดังนี้|ดังต่อไปนี้|ได้แก่|ประกอบด้วย|(?:\d+|[๐-๙]+|สาม|สี่|ห้า)\s*(?:ประการ|ข้อ|ด้าน|เรื่อง|ส\.))"
                        r"\s*:?$|(?:following|as follows|include):?$", re.I)
_COUNT = re.compile(r"(\d+|[๐-๙]+)\s*(?:ประการ|ข้อ|ด้าน|เรื่อง|ส\.)")
_ENUM = re.compile(r"^\s*(?:(?:\d{1,2}|[๐-๙]{1,2})[.)]|[•\-–*]|ส\.\d|\(\d+\))\s*")
_MAX_UNIT = 420
EVIDENCE: dict[str, re.Pattern] = {
    "factors": CUES["success_factor"],
    "obstacles": CUES["obstacle"],
    "recommendations": CUES["recommendation"],
    "how": re.compile(r"โดย|ด้วยการ|ผ่าน|จัดทำ|ดำเนินการ|ใช้|การ(?:จับคู่|บูรณาการ|สร้าง)|by |through|using", re.I),
    "why": re.compile(r"เพราะ|เนื่องจาก|เพื่อ|จึง|ทำให้|because|due to|so that|in order to", re.I),
    "who": re.compile(r"(?:นาย|นาง|นางสาว|ดร\.|ผศ\.|รศ\.)[ก-ฮ]|ผู้ว่าราชการ|ผู้อำนวยการ|รองเลขาธิการ|"
                      r"เลขาธิการ|ประธาน|อธิบดี|governor|director|minister|secretary", re.I),
    "when": re.compile(r"\d{1,2}\s*(?:ม\.ค\.|ก\.พ\.|มี\.ค\.|เม\.ย\.|พ\.ค\.|มิ\.ย\.|ก\.ค\.|ส\.ค\.|ก\.ย\.|ต\.ค\.|พ\.ย\.|ธ\.ค\.|"
                       r"มกราคม|กุมภาพันธ์|มีนาคม|เมษายน|พฤษภาคม|มิถุนายน|กรกฎาคม|สิงหาคม|กันยายน|ตุลาคม|"
                       r"พฤศจิกายน|ธันวาคม)|พ\.ศ\.|(?:25|20)\d\d|วันที่|\b(?:19|20)\d\d\b", re.I),
    "how_many": re.compile(r"(?:\d[\d,.]*|[๐-๙]+)\s*(?:ผลงาน|คน|ราย|หน่วยงาน|แห่ง|จังหวัด|เรื่อง|ครั้ง|บาท|"
                           r"ล้าน|ไร่|ครัวเรือน|หมู่บ้าน|ตำบล|อำเภอ|วัน|เดือน|ปี|%|percent|applications|"
                           r"people|days|households)|ร้อยละ|เท่า", re.I),
    "definition": re.compile(r"คือ|หมายถึง|เป็นการ|is a|refers to|means", re.I),
    "list": re.compile(r"ได้แก่|ประกอบด้วย|ดังนี้|เช่น|include", re.I),
    "comparison": re.compile(r"ขณะที่|แตกต่าง|whereas|while", re.I),
}


@dataclass
class Sentence:
    text: str
    hit: Hit
    rank: int  # of the hit
    pos: int  # order in the passage
    start: int  # character offset in the passage
    tokens: set[str] = field(default_factory=set)
    subject: str | None = None  # the province the sentence is about (named or paragraph's)
    mentions: set[str] = field(default_factory=set)  # provinces it names
    score: float = 0.0
    items: list[str] = field(default_factory=list)  # enumeration that follows it
    from_card: bool = False


def content_tokens(text: str, stop: set[str]) -> set[str]:
    return {t for t in tokenize(text, normalized=True)
            if t.strip() and t not in stop and re.search(r"\w", t)}


def _units(text: str) -> list[tuple[int, int]]:
    """Sentence spans of a passage, clauses joined into whole sentences, line by line."""
    spans: list[list[int]] = []
    prev_line = -1
    for a, b in split_sentences(text):
        clause = text[a:b].strip()
        line = text.count("\n", 0, a)
        if (spans and line == prev_line and not _ENUM.match(clause)
                and (b - spans[-1][0]) <= _MAX_UNIT
                and (_ENDS_OPEN.search(text[spans[-1][0]:spans[-1][1]].strip())
                     or _STARTS_CONT.match(clause))):
            spans[-1][1] = b
        else:
            spans.append([a, b])
        prev_line = line
    return [(a, b) for a, b in spans]


def sentences(hits: list[Hit], stop: set[str]) -> list[Sentence]:
    out: list[Sentence] = []
    for rank, h in enumerate(hits):
        spans = _units(h.text)
        subject, line_of = None, -1
        for pos, (a, b) in enumerate(spans):
            text = h.text[a:b].strip()
            line = h.text.count("\n", 0, a)
            if line != line_of:
                subject, line_of = None, line
            named = list(dict.fromkeys(_PROV_RX.findall(text)))
            if len(named) == 1 or (named and text.find(named[0]) < 60):
                subject = named[0]
            elif named:
                subject = None
            if len(text) < 12 or text == h.title.strip():
                continue
            s = Sentence(text, h, rank, pos, a, content_tokens(text, stop), subject, set(named))
            if _ANNOUNCES.search(text) or _COUNT.search(text[-40:]):
                s.items = _following_items(h.text, spans, pos, text)
            out.append(s)
    return out


def _following_items(passage: str, spans: list[tuple[int, int]], pos: int, text: str) -> list[str]:
    """The items a sentence announces: numbered/bulleted items that follow (an item runs
    on over wrapped lines until the next marker), else the next clauses, up to the
    announced count."""
    m = _COUNT.search(text)
    want = min(int(m.group(1).translate(str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789"))) if m else 8, 8)
    rest = [passage[a:b].strip() for a, b in spans[pos + 1:] if passage[a:b].strip()]
    items: list[str] = []
    if rest and _ENUM.match(rest[0]):
        for part in rest:
            if _ENUM.match(part):
                if len(items) >= want:
                    break
                items.append(part)
            elif len(items[-1]) < 300:
                items[-1] += " " + part
        return items
    return rest[:want]


#: Types whose answer is a detail (a name, a date, a figure) that often stands in the
#: sentence next to the one sharing the question's words.
DETAIL_TYPES = ("who", "when", "how_many")


def score(s: Sentence, q: Question, qtok: set[str], neighbour_match: int = 0) -> float:
    matched = len(qtok & s.tokens)
    ev = EVIDENCE.get(q.kind)
    has_ev = bool(ev and ev.search(s.text))
    sc = matched + 0.5 / (s.rank + 1)
    if q.kind in DETAIL_TYPES:
        sc += (3.0 + 0.6 * neighbour_match) if has_ev else 0.0
    elif has_ev:
        sc += 1.5
    if s.items and q.kind in ("factors", "obstacles", "recommendations", "list", "how"):
        sc += 1.0
    if q.provinces and q.kind != "comparison":
        if s.subject in q.provinces:
            sc += 2.0
        elif s.subject is not None and not s.mentions & set(q.provinces):
            sc -= 3.0  # about another province of the same passage
        elif s.mentions & set(q.provinces):
            sc += 0.5
    if s.from_card:
        sc += 2.0
    return sc


def _sim(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def neighbour_matches(cands: list[Sentence], qtok: set[str]) -> list[int]:
    """Query words shared by each sentence's neighbours (same passage, next to it)."""
    by = {(id(c.hit), c.pos): len(qtok & c.tokens) for c in cands}
    return [max(by.get((id(c.hit), c.pos - 1), 0), by.get((id(c.hit), c.pos + 1), 0)) for c in cands]


def mmr(cands: list[Sentence], k: int, lam: float = 0.7) -> list[Sentence]:
    """Greedy maximal marginal relevance over token overlap."""
    if not cands:
        return []
    top = max(c.score for c in cands) or 1.0
    chosen: list[Sentence] = []
    pool = list(cands)
    while pool and len(chosen) < k:
        best = max(pool, key=lambda c: lam * c.score / top
                   - (1 - lam) * max((_sim(c.tokens, d.tokens) for d in chosen), default=0.0))
        pool.remove(best)
        if any(best.text in d.text or d.text in best.text for d in chosen):
            continue
        chosen.append(best)
    return chosen

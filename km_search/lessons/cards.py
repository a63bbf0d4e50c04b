"""Lesson cards: the case, context, success factors, obstacles, recommendations, results
and people of one document, each item citing the sentence(s) it came from.

Offline. Success factors, obstacles, recommendations and results come from two
sources, merged: items under role headings and sentences the role model
(:mod:`.roles`, a classifier over sentence vectors, on the units of :mod:`.structure`)
assigns a role; and the cue-phrase blocks for announced lists of factors ("ปัจจัย
ความสำเร็จ ... ได้แก่ ...", "5 ส.", "... ดังนี้" followed by numbered lines). Programme
names, people (title + name + surname + role), figures and agencies (the gazetteer in
:mod:`.facets`) are patterns. PyThaiNLP's NER would help with people, but its model
(thainer) is not bundled with the wheel and needs a download, so it is not used.

A "sentence" here is a span from :func:`km_search.thai.split_sentences`, which in Thai
is often a clause; a field item that needs more context (a list of factors) cites the
run of consecutive clauses it spans.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from km_search.models import Document
from km_search.thai import split_sentences
from km_search.thai.provinces import PROVINCES

from . import facets as F
from . import structure as S
from .roles import ROLES, RoleModel

EXTRACTOR_VERSION = 2
FIELDS = ("programmes", "agencies", "provinces", "context", "success_factors", "obstacles",
          "recommendations", "results", "figures", "people")
FIELD_LABELS = {
    "programmes": "โครงการ/ชื่อกรณี (programmes)", "agencies": "หน่วยงาน (agencies)",
    "provinces": "จังหวัด (provinces)", "context": "บริบท (context)",
    "success_factors": "ปัจจัยความสำเร็จ (success factors)", "obstacles": "ปัญหาอุปสรรค (obstacles)",
    "recommendations": "ข้อเสนอแนะ (recommendations)", "results": "ผลลัพธ์/หลักฐาน (results)",
    "figures": "ตัวเลข (figures)", "people": "บุคคลและบทบาท (people and roles)",
}


@dataclass
class Citation:
    doc_id: str
    start: int  # character span in the document body (-1 when where != "body")
    end: int
    text: str
    where: str = "body"  # "body", "title" or "publisher"


@dataclass
class Item:
    text: str
    citations: list[Citation]
    province: str | None = None  # the case province the item belongs to; None = shared
    tags: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class LessonCard:
    doc_id: str
    title: str
    url: str = ""
    publisher: str = ""
    published: str | None = None
    published_raw: str = ""
    fiscal_year: int | None = None
    hash: str = ""
    programmes: list[Item] = field(default_factory=list)
    agencies: list[Item] = field(default_factory=list)
    provinces: list[Item] = field(default_factory=list)
    context: list[Item] = field(default_factory=list)
    success_factors: list[Item] = field(default_factory=list)
    obstacles: list[Item] = field(default_factory=list)
    recommendations: list[Item] = field(default_factory=list)
    results: list[Item] = field(default_factory=list)
    figures: list[Item] = field(default_factory=list)
    people: list[Item] = field(default_factory=list)
    facets: dict[str, list] = field(default_factory=dict)
    scope: str | None = None  # a province when this is one case of a multi-case document
    version: int = EXTRACTOR_VERSION

    @property
    def ref(self) -> str:
        return f"{self.doc_id}#{self.scope}" if self.scope else self.doc_id

    @property
    def case_name(self) -> str:
        """A short name for the case: province (when scoped) and programme names."""
        progs = [i.text for i in self.programmes][:3]
        head = f"จังหวัด{self.scope}" if self.scope else ""
        if not head:
            provs = [i.text for i in self.provinces]
            head = " / ".join(f"จังหวัด{p}" for p in provs[:2]) if len(provs) <= 2 else ""
        if not head:
            head = " / ".join(i.text for i in self.agencies[:2])
        return " : ".join(x for x in (head, ", ".join(progs)) if x) or self.title[:60]

    def items(self, name: str) -> list[Item]:
        return getattr(self, name)

    def scoped(self, province: str) -> "LessonCard":
        """The part of a card about one of its case provinces (items tied to another
        case province are dropped; shared items stay)."""
        if province not in {i.text for i in self.provinces}:
            raise KeyError(f"{province} is not a case province of {self.doc_id}")
        keep = {name: [i for i in self.items(name) if i.province in (None, province)]
                for name in FIELDS}
        keep["provinces"] = [i for i in self.provinces if i.text == province]
        return replace(self, scope=province, **keep)

    def cases(self) -> list[str]:
        """The case provinces of a document that tells several cases: provinces with
        programmes or lesson items of their own, when there are at least two."""
        own = dict.fromkeys((i.text for i in self.provinces), 0)
        for name in ("programmes", "success_factors", "obstacles", "recommendations", "results"):
            for it in self.items(name):
                if it.province in own:
                    own[it.province] += 1
        found = [p for p, n in own.items() if n]
        return found if len(found) >= 2 and not self.scope else []

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LessonCard":
        d = dict(d)
        for name in FIELDS:
            d[name] = [Item(**{**i, "citations": [Citation(**c) for c in i["citations"]]})
                       for i in d.get(name, [])]
        return cls(**d)


# -- cues and patterns ------------------------------------------------------------------
FACTOR_CUE = re.compile(r"ปัจจัย(?:แห่ง)?(?:ความ)?สำเร็จ|ปัจจัยสำคัญ|เคล็ด(?:ลับ|ที่ไม่ลับ)|"
                        r"กุญแจ(?:สำคัญ|ความสำเร็จ|แห่งความสำเร็จ)|\d\s*ส\.|success factor|key to success",
                        re.I)
# a factor cue only counts when the factors follow ("ได้แก่ ...", "3 ประการ คือ ...")
LIST_MARK = re.compile(r"ได้แก่|ประกอบด้วย|คือ|ดังนี้|ตั้งแต่|เริ่มจาก|\d+\s*(?:ประการ|ข้อ|เรื่อง|ด้าน)")
CONTEXT_CUE = re.compile(r"เป้าหมาย|วัตถุประสงค์|วิสัยทัศน์|มุ่ง(?:พัฒนา|สู่|เน้น)|แนวทางการพัฒนา|"
                         r"ขับเคลื่อน\S*สู่การเป็น|ภายใต้การเปลี่ยนแปลง")
RESULT_CUE = re.compile(r"ผลงานที่สำคัญ|(?<!ติดตาม)ผลการดำเนินงาน|ผลการประเมิน|ได้รับรางวัล|ผ่านการประเมิน|"
                        r"ได้รับคัดเลือก|ผลสำเร็จ|ประสบความสำเร็จ")
OBSTACLE_CUE = re.compile(r"ปัญหาอุปสรรค|อุปสรรค|ข้อจำกัด|ความท้าทาย|ล้าช้า|ล่าช้า|ไม่เพียงพอ|"
                          r"ขาดแคลน|ขาดการ|ติดขัด")
RECO_CUE = re.compile(r"ข้อเสนอแนะ(?!แผน)|(?<!ที่)(?<!ที่หน่วยงาน)ควร(?:มี|ต้อง|จะ|ปรับ|ใช้|นำ|ส่งเสริม|พัฒนา)|"
                      r"บทเรียนที่ได้|ข้อคิด")
# a clause starting like this opens a new topic: a block of clauses stops before it
TOPIC_CHANGE = re.compile(r"^(?:สำหรับ|ทั้งนี้|นอกจากนี้|อย่างไรก็ตาม|เพื่อให้|โดยมีวัตถุประสงค์|"
                          r"(?:นางสาว|นาง|นาย|ดร\.|รศ\.|ผศ\.|ศ\.)[ก-ฮเ-ไ])")
ENUM_LINE = re.compile(r"^\s*(?:\d{1,2}[.)]|[•\-–*]|ส\.\d)\s*")
QUOTED = re.compile(r"[“\"][^”\"\n]{1,200}[”\"]")

_NAME = r"[ก-ฮเ-ไ][\u0e01-\u0e4e]+"
_TITLE = (r"(?:นางสาว|นาง|นาย|ว่าที่ร้อยตรี|รองศาสตราจารย์|ผู้ช่วยศาสตราจารย์|ศาสตราจารย์|"
          r"(?:ผศ|รศ|ศ|ดร|พญ|ทพญ|ทพ|นพ|พล\.อ|พ\.ต\.อ)\.)")
PERSON = re.compile(rf"(?P<title>(?:{_TITLE}\s?)+)(?P<first>{_NAME})\s(?P<last>{_NAME})")
_NOT_FIRST = ("กรัฐมนตรี", "กเทศมนตรี", "กองค์การ", "กสมาคม")
ROLE_START = re.compile(r"^(?:รอง|ผู้|ปลัด|ประธาน|ที่ปรึกษา|รักษาการ|อธิบดี|เลขาธิการ|นายอำเภอ|"
                        r"คณบดี|อาจารย์|นักวิชาการ|หัวหน้า|ผอ\.|ผวจ\.|กรรมการ|อธิการบดี|นายก|"
                        r"ศึกษาธิการ|พัฒนาการ|สาธารณสุข|เจ้าหน้าที่|วิทยากร|ผู้แทน)")
ROLE_STOP = re.compile(r"^(?:ได้|กล่าว|เป็น|และ|โดย|มา|ร่วม|ผ่าน|เกี่ยวกับ|ซึ่ง|ที่|ใน|ณ|เพื่อ|"
                       r"ให้|จาก|พร้อม|นำ|ทั้งนี้|บรรยาย|\()")

_Q = r"[“\"]([^”\"\n]{2,80})[”\"]"
PROGRAMME_PATTERNS = (
    re.compile(rf"(?:โครงการ|การดำเนินการ|โปรแกรม|หลักสูตร[^“\"\n]{{0,120}}?)\s*{_Q}"),
    re.compile(r"โปรแกรม\s*([A-Za-z][\w\-]*(?:\s+\d+(?:\.\d+)?)?)"),
    re.compile(r"โครงการ\s*([A-Za-z][A-Za-z0-9\-]*(?:\s+[A-Za-z0-9][A-Za-z0-9\-]*){0,4})"),
    re.compile(r"โครงการ([ก-ฮเ-ไ][^\s“\"()]+(?:\s\d+(?:\.\d+)?)?)"),
    re.compile(r"(?:เช่น|และ)\s+([A-Z][A-Za-z]*(?:\s+[A-Za-z][A-Za-z]*){1,4})"),
)
TITLE_PLAN = re.compile(r"(?:จัดทำ|ขับเคลื่อน)(แผน[ก-๙]+)")
_NOT_PROGRAMME = re.compile(r"^(?:ทั้ง|ที่|นี้|ดังกล่าว|ซึ่ง|ต่าง|และ|ใน|ของ|เพื่อ|จะ|ได้|มี|เข้า)")
_PROV_RX = "|".join(sorted(map(re.escape, PROVINCES), key=len, reverse=True))
FIGURE = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?\s*(ผลงาน|หน่วยงาน|จังหวัด|คน|ราย|"
                    r"โครงการ|แห่ง|ชุมชน|หมู่บ้าน|ครัวเรือน|ล้านบาท|บาท|อำเภอ|ตำบล|เครือข่าย|%)"
                    rf"(?!{_PROV_RX})|ร้อยละ\s*\d+(?:\.\d+)?")
CASE_PROVINCE = re.compile(rf"(?:จังหวัด|จ\.)\s*({_PROV_RX})")

FACTOR_TAGS: dict[str, tuple[str, str]] = {
    "collaboration": (r"สานพลัง|มีส่วนร่วม|ร่วมมือ|บูรณาการ|เครือข่าย|ประชารัฐ|collaboration",
                      "การสานพลัง/การมีส่วนร่วม"),
    "innovation": (r"นวัตกรรม|innovation", "นวัตกรรม"),
    "digital": (r"ดิจิทัล|เทคโนโลยี|digit", "ดิจิทัล/เทคโนโลยี"),
    "leadership": (r"ผู้บริหาร|ผู้นำ|ต้นแบบ", "ภาวะผู้นำของผู้บริหาร"),
    "citizen_needs": (r"ความต้องการของประชาชน|ประชาชนเป็นศูนย์กลาง", "ยึดความต้องการของประชาชน"),
    "clear_goals": (r"เป้าหมาย|นโยบาย|ยุทธศาสตร์", "เป้าหมาย/นโยบายชัดเจน"),
    "people": (r"บุคลากร|ทีมงาน|ขวัญกำลังใจ|แรงจูงใจ|ความรู้ความเข้าใจ", "การพัฒนาคนและทีม"),
    "monitoring": (r"ติดตาม|จัดเก็บข้อมูล|ฐานข้อมูล", "การติดตามผลและข้อมูล"),
}
FACTOR_LABELS = {k: v[1] for k, v in FACTOR_TAGS.items()}


def factor_tags(text: str) -> list[str]:
    return [k for k, (rx, _) in FACTOR_TAGS.items() if re.search(rx, text, re.I)]


# -- the document as clauses ---------------------------------------------------------------
class _Text:
    def __init__(self, doc: Document):
        self.doc, self.body = doc, doc.body
        self.spans = split_sentences(doc.body)
        self.line = [doc.body.count("\n", 0, s) for s, _ in self.spans]
        self.subjects = [(m.start(), m.group(1), doc.body.count("\n", 0, m.start()))
                         for m in CASE_PROVINCE.finditer(doc.body)
                         if not doc.body[max(0, m.start() - 12):m.start()].endswith("ผู้ว่าราชการ")]

    def text(self, i: int) -> str:
        s, e = self.spans[i]
        return self.body[s:e]

    def cite(self, idx: list[int]) -> list[Citation]:
        return [Citation(self.doc.doc_id, self.spans[i][0], self.spans[i][1], self.text(i))
                for i in idx]

    def overlapping(self, start: int, end: int) -> list[int]:
        return [i for i, (s, e) in enumerate(self.spans) if s < end and e > start]

    def joined(self, idx: list[int]) -> str:
        return " ".join(self.text(i) for i in idx)

    def province_for(self, text: str, pos: int, use_subject: bool = True) -> str | None:
        """The case province an item belongs to: named in the item itself, else the last
        "จังหวัดX" before it on the same line (the subject of the paragraph), else None."""
        mentions = list(CASE_PROVINCE.finditer(text))
        own = list(dict.fromkeys(m.group(1) for m in mentions))
        if len(own) == 1:
            return own[0]
        if own and mentions[0].start() < 80:  # several: the one the item opens with
            return mentions[0].group(1)
        if own or not use_subject:
            return None
        line = self.body.count("\n", 0, pos)
        last = None
        for p, name, ln in self.subjects:
            if p >= pos:
                break
            if ln == line:
                last = name
        return last

    def block(self, i: int, max_chars: int = 600) -> list[int]:
        """Clause i and the clauses after it on the same line, until a topic change."""
        idx, size = [i], len(self.text(i))
        j = i + 1
        while (j < len(self.spans) and self.line[j] == self.line[i]
               and not TOPIC_CHANGE.match(self.text(j)) and size + len(self.text(j)) <= max_chars):
            idx.append(j)
            size += len(self.text(j)) + 1
            j += 1
        return idx

    def enumerated_after(self, last: int) -> list[list[int]]:
        """Numbered/bulleted lines right after clause ``last`` (a list announced by "ดังนี้")."""
        groups: list[list[int]] = []
        j, line = last + 1, self.line[last]
        while j < len(self.spans):
            if self.line[j] != line + 1 or not ENUM_LINE.match(self.text(j)):
                break
            line = self.line[j]
            grp = [k for k in range(j, len(self.spans)) if self.line[k] == line]
            groups.append(grp)
            j = grp[-1] + 1
        return groups


def _in_quotes(text: str, pos: int) -> bool:
    return any(m.start() < pos < m.end() for m in QUOTED.finditer(text))


def _mk(t: _Text, idx: list[int], text: str | None = None, **kw) -> Item:
    body_text = t.joined(idx) if text is None else text
    pos = t.spans[idx[0]][0]
    return Item(text=body_text, citations=t.cite(idx),
                province=t.province_for(t.joined(idx), pos), tags=factor_tags(body_text), **kw)


def _cue_blocks(t: _Text, cue: re.Pattern, max_chars: int, need_list: bool = False,
                enumerate_lists: bool = False, skip: set[tuple[int, int]] = frozenset()) -> list[Item]:
    items: list[Item] = []
    used: set[int] = {i for i, sp in enumerate(t.spans) if sp in skip}
    for i in range(len(t.spans)):
        if i in used:
            continue
        txt = t.text(i)
        m = next((m for m in cue.finditer(txt) if not _in_quotes(txt, m.start())), None)
        if m is None:
            continue
        if need_list:
            nxt = t.text(i + 1) if i + 1 < len(t.spans) and t.line[i + 1] == t.line[i] else ""
            if not LIST_MARK.search(txt[m.start():] + " " + nxt):
                continue
        idx = t.block(i, max_chars)
        enum = t.enumerated_after(idx[-1]) if enumerate_lists and t.text(idx[-1]).rstrip().endswith("ดังนี้") else []
        used.update(idx)
        if enum:  # the header announces a list: one item per listed line, citing both
            for grp in enum:
                used.update(grp)
                it = _mk(t, grp[:3])
                it.citations = t.cite(idx) + it.citations
                it.extra["lead"] = t.joined(idx)
                items.append(it)
        else:
            items.append(_mk(t, idx))
    return items


def _programmes(t: _Text) -> list[Item]:
    found: dict[str, Item] = {}
    for rx in PROGRAMME_PATTERNS:
        for m in rx.finditer(t.body):
            name = m.group(1).strip(" .,")
            if len(name) < 3 or _NOT_PROGRAMME.match(name):
                continue
            key = re.sub(r"\s+", "", name)
            if any(key in k or k in key for k in found):
                continue
            idx = t.overlapping(m.start(), m.end())
            pos = m.start(1)
            own = t.province_for(t.joined(idx), pos)
            found[key] = Item(text=name, citations=t.cite(idx), province=own)
    # the plan a workshop/meeting is about, as its headline names it ("...เพื่อจัดทำแผนX ...")
    for m in TITLE_PLAN.finditer(t.doc.title):
        name = m.group(1)
        key = re.sub(r"\s+", "", name)
        if any(key in k or k in key for k in found):
            continue
        pos = t.body.find(name)
        cites = (t.cite(t.overlapping(pos, pos + len(name))) if pos >= 0
                 else [Citation(t.doc.doc_id, -1, -1, t.doc.title, "title")])
        found[key] = Item(text=name, citations=cites)
    return sorted(found.values(), key=lambda it: it.citations[0].start)


def _agencies(t: _Text) -> list[Item]:
    doc = t.doc
    items: dict[str, Item] = {}
    for name, s, e in F.find_agencies(t.body):
        if name in items:
            continue
        a = F.AGENCY_BY_NAME[name]
        items[name] = Item(text=name, citations=t.cite(t.overlapping(s, e)),
                           extra={"abbrs": list(a.abbrs), "en": a.en, "ministry": a.parent or a.name,
                                  "kind": a.kind})
    for where, text in (("title", doc.title), ("publisher", doc.publisher)):
        for name, _, _ in F.find_agencies(text):
            if name not in items:
                a = F.AGENCY_BY_NAME[name]
                items[name] = Item(text=name, citations=[Citation(doc.doc_id, -1, -1, text, where)],
                                   extra={"abbrs": list(a.abbrs), "en": a.en,
                                          "ministry": a.parent or a.name, "kind": a.kind})
    return list(items.values())


def _provinces(t: _Text) -> list[Item]:
    items: dict[str, Item] = {}
    for m in CASE_PROVINCE.finditer(t.body):
        p = m.group(1)
        if p in items:
            if len(items[p].citations) < 3:
                items[p].citations += [c for c in t.cite(t.overlapping(m.start(), m.end()))
                                       if c not in items[p].citations]
            continue
        items[p] = Item(text=p, citations=t.cite(t.overlapping(m.start(), m.end())), province=p,
                        extra={"region": F.region_of(p)})
    return list(items.values())


def _figures(t: _Text) -> list[Item]:
    items: dict[str, Item] = {}
    for m in FIGURE.finditer(t.body):
        value = re.sub(r"\s+", " ", m.group(0)).strip()
        if value in items:
            continue
        idx = t.overlapping(m.start(), m.end())
        items[value] = Item(text=value, citations=t.cite(idx),
                            province=t.province_for(t.joined(idx), m.start()),
                            extra={"number": float(re.sub(r"[^\d.]", "", value.split()[0] if value[0].isdigit()
                                                          else value.replace("ร้อยละ", "")) or 0),
                                   "unit": m.group(2) or "ร้อยละ"})
    return list(items.values())


def _people(t: _Text) -> list[Item]:
    people: dict[str, Item] = {}
    for m in PERSON.finditer(t.body):
        first, last = m.group("first"), m.group("last")
        if m.group("title").strip() == "นาย" and first.startswith(_NOT_FIRST):
            continue
        name = f"{first} {last}"
        role_toks: list[str] = []
        end = m.end()
        for tm in re.finditer(r"[^\s]+", t.body[m.end():m.end() + 200].split("\n")[0]):
            tok = tm.group(0)
            if len(role_toks) >= 5:
                break
            if not role_toks:
                if not ROLE_START.match(tok):
                    break
            elif tok.startswith("และ") and ROLE_START.match(tok[3:]) and not re.match(_TITLE, tok[3:]):
                pass  # "... และผู้อำนวยการกลุ่ม..." continues the role
            elif ROLE_STOP.match(tok) or re.match(_TITLE + r"[ก-ฮ]", tok):
                break
            role_toks.append(tok)
            end = m.end() + tm.end()
        role = " ".join(role_toks).rstrip(",")
        idx = t.overlapping(m.start(), end)
        prov = t.province_for(role, m.start(), use_subject=False) if role else None
        if name in people:
            it = people[name]
            if role and not it.extra["role"]:
                it.extra["role"], it.province = role, prov
            if len(it.citations) < 3:
                it.citations += [c for c in t.cite(idx) if c not in it.citations]
            continue
        people[name] = Item(text=name, citations=t.cite(idx), province=prov,
                            extra={"title": m.group("title").strip(), "role": role})
    return list(people.values())


CONTINUES = re.compile(r"^(?:และ|ประกอบกับ|อีกทั้ง|นอกจากนี้|รวมทั้ง|ทั้งยัง|ทั้งนี้ยัง|also|and |in addition|"
                       r"moreover|furthermore)", re.I)
#: A sentence outside a role section gets the model's role only at this probability;
#: a continuation ("และ…", "นอกจากนี้…") inherits its predecessor's at CONTINUE_MIN. Both
#: chosen on the seeds (the development documents; at 0.5 the seeds' news prose gave
#: 9 false factor items, at 0.7 two), never on the held-out documents.
P_MIN = 0.7
CONTINUE_MIN = 0.3
_FIELD_OF = {"success_factor": "success_factors", "obstacle": "obstacles",
             "recommendation": "recommendations", "result": "results"}


def unit_roles(body: str, model: RoleModel | None, title: str = "") -> list[tuple[S.Unit, str | None, float]]:
    """Every non-heading unit of ``body`` with its role (None: none confident) and the
    model's probability for it (1.0 when a heading decided)."""
    us = [u for u in S.units(body, title) if u.kind != "heading" and len(body[u.start:u.end].strip()) >= 6]
    if model is None:
        return [(u, u.section if u.section in S.LESSON_ROLES else None, 1.0) for u in us]
    texts = [body[u.start:u.end] for u in us]
    probs = model.proba(texts)
    out: list[tuple[S.Unit, str | None, float]] = []
    for k, (u, text) in enumerate(zip(us, texts)):
        p = probs[k]
        if u.section in S.LESSON_ROLES:
            role, conf = u.section, 1.0
        elif u.section == "lesson":
            role = max(S.LESSON_ROLES, key=lambda r: p[ROLES.index(r)])
            conf = 1.0
        elif u.section in ("result", "method", "context") and u.kind == "item":
            role, conf = u.section, 1.0
        else:
            i = int(p.argmax())
            role, conf = (ROLES[i], float(p[i])) if p[i] >= P_MIN else (None, float(p[i]))
            prev = out[-1] if out else None
            if (prev and prev[0].para == u.para and prev[1] in S.LESSON_ROLES
                    and role not in S.LESSON_ROLES and CONTINUES.match(text.strip())
                    and p[ROLES.index(prev[1])] >= CONTINUE_MIN):
                role, conf = prev[1], float(p[ROLES.index(prev[1])])
        out.append((u, role, conf))
    return out


def _role_items(t: _Text, model: RoleModel | None) -> dict[str, list[Item]]:
    items: dict[str, list[Item]] = {f: [] for f in _FIELD_OF.values()}
    for u, role, conf in unit_roles(t.body, model, t.doc.title):
        if role not in _FIELD_OF:
            continue
        text = t.body[u.start:u.end]
        items[_FIELD_OF[role]].append(Item(
            text=text, citations=[Citation(t.doc.doc_id, u.start, u.end, text)],
            province=t.province_for(text, u.start), tags=factor_tags(text),
            extra={"p": round(conf, 3), "section": u.section, "kind": u.kind}))
    return items


def _fresh(first: list[Item], more: list[Item]) -> list[Item]:
    """The items of ``more`` whose text no item of ``first`` already cites."""
    spans = [(c.start, c.end) for it in first for c in it.citations if c.where == "body"]
    return [it for it in more
            if not any(a < it.citations[0].end and it.citations[0].start < b for a, b in spans)]


def _merge(first: list[Item], more: list[Item]) -> list[Item]:
    return sorted(first + _fresh(first, more), key=lambda it: it.citations[0].start if it.citations else -1)


def extract_card(doc: Document, roles: RoleModel | None = None) -> LessonCard:
    """The lesson card of one document. ``roles``: the sentence-role model (see
    :func:`.roles.role_model`; the lesson store of a configured home passes it); None =
    headings and cue phrases only, no model loaded."""
    model = roles
    t = _Text(doc)
    found = _role_items(t, model)
    heads = [Item("", [Citation(doc.doc_id, u.start, u.end, "")])
             for u in S.units(doc.body, doc.title) if u.kind == "heading"]

    def cue(rx: re.Pattern, max_chars: int, **kw) -> list[Item]:  # headings are not items
        return _fresh(heads, _cue_blocks(t, rx, max_chars, **kw))
    card = LessonCard(
        doc_id=doc.doc_id, title=doc.title, url=doc.url, publisher=doc.publisher,
        published=doc.published, published_raw=doc.published_raw,
        fiscal_year=F.fiscal_year(doc.published), hash=doc.hash,
        programmes=_programmes(t), agencies=_agencies(t), provinces=_provinces(t),
        figures=_figures(t), people=_people(t))
    card.success_factors = _merge(cue(FACTOR_CUE, 600, need_list=True, enumerate_lists=True),
                                  found["success_factors"])
    if model is None:  # no model: the cue phrases decide, as before
        card.obstacles = _merge(found["obstacles"], cue(OBSTACLE_CUE, 300))
        card.recommendations = _merge(found["recommendations"], cue(RECO_CUE, 400))
    else:
        card.obstacles = _fresh(card.success_factors, found["obstacles"])
        card.recommendations = _fresh(card.success_factors, found["recommendations"])
    taken = {(c.start, c.end) for name in ("success_factors", "recommendations", "obstacles")
             for it in card.items(name) for c in it.citations}
    card.results = _merge(cue(RESULT_CUE, 400, skip=taken),
                          _fresh([i for f in ("success_factors", "obstacles", "recommendations")
                                  for i in card.items(f)], found["results"]))
    card.context = cue(CONTEXT_CUE, 400, skip=taken)[:6]
    tags = [tg for it in card.success_factors for tg in it.tags]
    card.facets = F.doc_facets(title=doc.title, body=doc.body, publisher=doc.publisher,
                               published=doc.published, provinces=doc.provinces, factor_tags=tags)
    return card

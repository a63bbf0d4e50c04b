"""A report as units: headings, list items and sentences, each with the role its heading gives.

Reports put lessons under headings ("ปัจจัยแห่งความสำเร็จ", "ปัญหาและอุปสรรค",
"ข้อเสนอแนะ", "Lessons learned", ...) followed by numbered or bulleted lists. Every
item under such a heading takes the heading's role, whatever its wording ("ถนนขาดใน
ฤดูฝน" is an obstacle because of where it stands). Outside role sections a unit is a
sentence (the project's Thai splitter, with "คือ …"/"ได้แก่ …" clauses joined back to
the clause they complete) and the role model decides.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from km_search.thai import split_sentences

# heading text -> role; "lesson" = one of the three lesson roles, the model picks which
HEADINGS: tuple[tuple[str, re.Pattern], ...] = tuple((role, re.compile(rx, re.I)) for role, rx in (
    ("success_factor", r"^(?:ปัจจัย(?:หลัก)?(?:แห่ง|สู่|ที่ทำให้(?:เกิด)?|ที่ส่งผลต่อ|ของ)?(?:ความ|ผล)?สำเร็จ|"
                       r"ปัจจัยเอื้อ|ปัจจัยสนับสนุน|เคล็ด(?:ลับ|ที่ไม่ลับ)|กุญแจ(?:สู่|แห่ง)?ความสำเร็จ|"
                       r"(?:key |critical )?success factors?|what worked|enablers|key factors)"),
    ("obstacle", r"^(?:ปัญหา(?:\s*(?:และ|/|,)\s*)?อุปสรรค|ปัญหาที่พบ|ปัญหา|อุปสรรค|ข้อจำกัด|ความท้าทาย|"
                 r"จุดอ่อน|challenges?|obstacles?|problems?(?: encountered)?|difficulties|constraints|"
                 r"barriers|limitations)"),
    ("recommendation", r"^(?:ข้อเสนอแนะ|ข้อเสนอ|ข้อแนะนำ|แนวทาง(?:การ)?(?:พัฒนา|แก้ไข)ต่อไป|ข้อคิด|"
                       r"สิ่งที่ควรทำต่อไป|recommendations?|suggestions?|next steps|the way forward)"),
    ("lesson", r"^(?:บทเรียน(?:ที่ได้(?:รับ)?)?|การถอดบทเรียน|lessons?(?: learned| learnt)?)"),
    ("result", r"^(?:ผล(?:การ)?(?:ดำเนิน(?:งาน|การ))|ผลลัพธ์|ผลที่(?:ได้รับ|เกิดขึ้น)|ผลสำเร็จ|ผลสัมฤทธิ์|"
               r"ผลงาน(?:ที่สำคัญ)?|results?|outcomes?|impact|achievements)"),
    ("method", r"^(?:การดำเนินงาน|การดำเนินการ|วิธี(?:การ)?(?:ดำเนินงาน)?|ขั้นตอน(?:การดำเนินงาน)?|"
               r"กิจกรรม(?:ที่ดำเนินการ)?|แนวทางการดำเนินงาน|what was done|approach|methods?|activities)"),
    ("context", r"^(?:ความเป็นมา|หลักการและเหตุผล|วัตถุประสงค์|บริบท|ข้อมูลทั่วไป|background|context|"
                r"objectives?|introduction)"),
))
LESSON_ROLES = ("success_factor", "obstacle", "recommendation")
ENUM = re.compile(r"^\s*(?:(?:\d{1,2}|[๐-๙]{1,2})(?:\.\d{1,2})*[.)]|\(\s*\d{1,2}\s*\)|[•\-–—*▪●○◦]|[ก-ฮ][.)])\s*")
NUMBERING = re.compile(r"^\s*(?:(?:ส่วนที่|หมวด(?:ที่)?|ข้อ(?:ที่)?|part|section)\s*[\d๐-๙]+[.)]?\s*|(?:\d{1,2}|[๐-๙]{1,2})(?:\.\d{1,2})*[.)]?\s+)")
JOIN_NEXT = re.compile(r"^(?:คือ|ได้แก่|ดังนี้|ประกอบด้วย|เช่น)(?:\s|$)")
_END = re.compile(r"[.!?।]$|\s(?:ดังนี้|ได้แก่|คือ)$")


@dataclass
class Unit:
    start: int
    end: int
    kind: str  # "item" (list item), "sentence" or "heading"
    section: str | None  # the role given by the heading it stands under, if any
    para: int  # paragraph number (units of one paragraph share it)


def heading_role(line: str) -> str | None:
    """The role a heading line announces, or None when it is not a role heading."""
    text = NUMBERING.sub("", line.strip()).strip(" :：-–*#")
    if not text or len(text) > 70:
        return None
    if re.search(r"คือ|ควร|\s(?:is|are|was|were|should)\s", text):
        return None  # a sentence that opens with a cue word, not a heading
    for role, rx in HEADINGS:
        m = rx.match(text)
        if m and len(text) - m.end() <= 30:
            return role
    return None


def _looks_like_heading(line: str) -> bool:
    s = line.strip()
    return (0 < len(s) <= 50 and not ENUM.match(s) and not _END.search(s)
            and len(s.split()) <= 6 and not re.search(r"\d{3,}", s))


def units(body: str, title: str = "") -> list[Unit]:
    """The units of ``body``; a line equal to the document's ``title`` is never a heading
    ("Lessons learned: one-stop licensing in …" names the report, not a section)."""
    out: list[Unit] = []
    section: str | None = None
    para, pos, in_list, blank_before = 0, 0, False, True
    lines = body.split("\n")
    for i, line in enumerate(lines):
        start, end = pos, pos + len(line)
        pos = end + 1
        s = line.strip()
        if not s:
            blank_before = True
            continue
        a = start + (len(line) - len(line.lstrip()))
        b = start + len(line.rstrip())
        head, _, rest = s.partition(":") if ":" in s[:60] else (s, "", "")
        role = heading_role(head) if s != title.strip() else None
        if role:
            section, in_list = role, False
            para += 1
            out.append(Unit(a, a + len(head), "heading", role, para))
            if rest.strip():  # "ปัญหาอุปสรรค: งบประมาณไม่พอ" - the text after the colon is an item
                off = body.index(rest.strip(), a + len(head))
                out.append(Unit(off, b, "item", role, para))
            blank_before = False
            continue
        if ENUM.match(s):
            para += 0 if in_list else 1
            in_list = True
            text = ENUM.sub("", s)
            if text.endswith(":"):  # a sub-heading inside the list ("4.1 ปัจจัยภายใน:")
                blank_before = False
                continue
            out.append(Unit(a + (len(s) - len(text)), b, "item", section, para))
            blank_before = False
            continue
        nxt = next((ln for ln in lines[i + 1:] if ln.strip()), "")
        if (blank_before and _looks_like_heading(s) and nxt and not _looks_like_heading(nxt)):
            # a heading we do not know: it closes the role section before it
            section, in_list = None, False
            para += 1
            out.append(Unit(a, b, "heading", None, para))
            blank_before = False
            continue
        if in_list and section is not None and blank_before:
            section = None  # prose after a list: the list's section has ended
        in_list = False
        para += 1
        for sa, sb in _sentences(body[a:b]):
            out.append(Unit(a + sa, a + sb, "sentence", section, para))
        blank_before = False
    return out


def _sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans, a clause that opens with "คือ"/"ได้แก่" joined to the one before."""
    spans: list[list[int]] = []
    for a, b in split_sentences(text):
        if spans and JOIN_NEXT.match(text[a:b]):
            spans[-1][1] = b
        else:
            spans.append([a, b])
    return [(a, b) for a, b in spans]

"""Case comparison: two to five lessons side by side, as a Markdown or DOCX workshop
handout. Every statement carries numbered citations [n]; the sources section gives each
one's document, character span and the quoted sentence.

A lesson is a card or a reference: a doc id, or "doc_id#province" for one case of a
document that tells several (seed 000 tells Khon Kaen's and Phang Nga's).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from km_search.markup import md_escape, safe_url

from .cards import FACTOR_LABELS, Citation, Item, LessonCard

ROWS: tuple[tuple[str, str], ...] = (
    ("case", "กรณีศึกษา (case)"),
    ("context", "บริบท (context)"),
    ("success_factors", "ปัจจัยความสำเร็จ (success factors)"),
    ("results", "ผลลัพธ์และหลักฐาน (results/evidence)"),
    ("obstacles", "ปัญหาอุปสรรค (obstacles)"),
    ("recommendations", "ข้อเสนอแนะ (recommendations)"),
    ("people", "บุคคลและบทบาท (people)"),
)
QUESTIONS = (
    "ปัจจัยความสำเร็จใดที่พบร่วมกันในทุกกรณี และปัจจัยใดเฉพาะบริบท?",
    "หน่วยงานของท่านมีเงื่อนไขใดที่เอื้อหรือเป็นอุปสรรคต่อการนำแนวทางนี้ไปใช้?",
    "ถ้าจะเริ่มพรุ่งนี้ ท่านจะเริ่มจากขั้นตอนใด และวัดผลอย่างไร?",
)
MAX_CELL_CHARS = 260


def resolve(lessons: Iterable[LessonCard | str], store: Any = None) -> list[LessonCard]:
    cards = []
    for x in lessons:
        if isinstance(x, LessonCard):
            cards.append(x)
            continue
        card = store.get(x) if store is not None else None
        if card is None:
            raise KeyError(f"no lesson {x}")
        cards.append(card)
    if not 2 <= len(cards) <= 5:
        raise ValueError(f"compare two to five lessons, not {len(cards)}")
    return cards


@dataclass
class Comparison:
    cards: list[LessonCard]
    cells: dict[str, list[list[tuple[str, list[int]]]]] = field(default_factory=dict)
    sources: list[tuple[LessonCard, Citation]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return "เปรียบเทียบกรณีศึกษา: " + " กับ ".join(c.case_name for c in self.cards)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS - 1].rstrip() + "…"


def build(lessons: Iterable[LessonCard | str], store: Any = None) -> Comparison:
    """Collect each row's cell lines (text, citation numbers) for every lesson."""
    comp = Comparison(resolve(lessons, store))
    numbers: dict[tuple, int] = {}

    def cite(card: LessonCard, cites: list[Citation]) -> list[int]:
        out = []
        for c in cites:
            key = (c.doc_id, c.start, c.end, c.where, c.text if c.start < 0 else "")
            if key not in numbers:
                comp.sources.append((card, c))
                numbers[key] = len(comp.sources)
            out.append(numbers[key])
        return out

    def line(card: LessonCard, it: Item, text: str | None = None) -> tuple[str, list[int]]:
        shared = " (ร่วม/shared)" if card.scope and it.province is None else ""
        return _short(text or it.text) + shared, cite(card, it.citations[:3])

    for name, _ in ROWS:
        comp.cells[name] = []
        for card in comp.cards:
            if name == "case":
                lines = [line(card, i, f"โครงการ/แนวทาง: {i.text}") for i in card.programmes]
                lines += [line(card, i, f"จังหวัด{i.text} ({i.extra.get('region') or ''})")
                          for i in card.provinces]
                lines += [line(card, i, f"หน่วยงาน: {i.text}") for i in card.agencies]
                lines.append((f"วันที่ {card.published_raw or card.published or '-'}"
                              + (f" · ปีงบประมาณ {card.fiscal_year}" if card.fiscal_year else ""), []))
            elif name == "success_factors":
                lines = [line(card, i, i.text + (" [" + ", ".join(FACTOR_LABELS[t] for t in i.tags) + "]"
                                                 if i.tags else "")) for i in card.success_factors]
            elif name == "results":
                lines = [line(card, i, f"ตัวเลข: {i.text}") for i in card.figures]
                lines += [line(card, i) for i in card.results]
            elif name == "people":
                lines = [line(card, i, i.text + (f" — {i.extra['role']}" if i.extra.get("role") else ""))
                         for i in card.people]
            else:
                lines = [line(card, i) for i in card.items(name)]
            comp.cells[name].append(lines or [("—", [])])
    return comp


def _marks(nums: list[int]) -> str:
    return "".join(f"[{n}]" for n in nums)


def to_markdown(lessons: Iterable[LessonCard | str] | Comparison, store: Any = None) -> str:
    comp = lessons if isinstance(lessons, Comparison) else build(lessons, store)
    out = [f"# {md_escape(comp.title)}", "",
           "เอกสารประกอบการอบรม (workshop handout) สร้างโดย km-search; ตัวเลขในวงเล็บเหลี่ยม"
           " [n] อ้างอิงประโยคต้นฉบับในหัวข้อ แหล่งที่มา", ""]
    out.append("| หัวข้อ | " + " | ".join(md_escape(c.case_name) for c in comp.cards) + " |")
    out.append("|---" * (len(comp.cards) + 1) + "|")
    for name, label in ROWS:
        cells = ["<br>".join(f"• {md_escape(t)} {_marks(n)}".rstrip() for t, n in lines)
                 for lines in comp.cells[name]]
        out.append(f"| **{label}** | " + " | ".join(cells) + " |")
    out += ["", "## คำถามชวนคิด (discussion)", ""] + [f"{i}. {q}" for i, q in enumerate(QUESTIONS, 1)]
    out += ["", "## เอกสาร (documents)", ""]
    docs = _documents(comp)
    for card, d in docs.values():
        url = safe_url(card.url)
        out.append(f"- **{d}** {md_escape(card.title)} ({md_escape(card.publisher)}, "
                   f"{md_escape(card.published_raw or card.published or '-')}; "
                   f"doc {md_escape(card.doc_id)})" + (f" <{url}>" if url else ""))
    out += ["", "## แหล่งที่มา (sources)", ""]
    for n, (card, c) in enumerate(comp.sources, 1):
        out.append(f"[{n}] {docs[card.doc_id][1]}, {_where(c)}: “{md_escape(c.text)}”")
    return "\n".join(out) + "\n"


def _documents(comp: Comparison) -> dict[str, tuple[LessonCard, str]]:
    docs: dict[str, tuple[LessonCard, str]] = {}
    for card in comp.cards:
        docs.setdefault(card.doc_id, (card, f"D{len(docs) + 1}"))
    return docs


def _where(c: Citation) -> str:
    return f"อักขระ {c.start}-{c.end}" if c.where == "body" else f"({c.where})"


def to_docx(lessons: Iterable[LessonCard | str] | Comparison, path: Path | str,
            store: Any = None) -> Path:
    """Write the handout as a Word document; returns its path."""
    from docx import Document as Docx
    from docx.enum.section import WD_ORIENT
    from docx.shared import Pt

    comp = lessons if isinstance(lessons, Comparison) else build(lessons, store)
    doc = Docx()
    sec = doc.sections[0]
    if len(comp.cards) > 2:  # landscape for wide tables
        sec.orientation = WD_ORIENT.LANDSCAPE
        sec.page_width, sec.page_height = sec.page_height, sec.page_width
    style = doc.styles["Normal"]
    style.font.name = "Tahoma"
    style.font.size = Pt(10)
    doc.core_properties.title = comp.title[:250]  # OOXML core properties hold <= 255 chars
    doc.core_properties.author = "km-search"
    doc.add_heading(comp.title, level=1)
    doc.add_paragraph("เอกสารประกอบการอบรม สร้างโดย km-search; [n] อ้างอิงประโยคต้นฉบับในหัวข้อแหล่งที่มา")
    table = doc.add_table(rows=1 + len(ROWS), cols=1 + len(comp.cards))
    table.style = "Table Grid"
    table.cell(0, 0).text = "หัวข้อ"
    for j, card in enumerate(comp.cards, 1):
        table.cell(0, j).text = card.case_name
        table.cell(0, j).paragraphs[0].runs[0].bold = True
    for i, (name, label) in enumerate(ROWS, 1):
        table.cell(i, 0).text = label
        table.cell(i, 0).paragraphs[0].runs[0].bold = True
        for j, lines in enumerate(comp.cells[name], 1):
            cell = table.cell(i, j)
            cell.text = ""
            for k, (text, nums) in enumerate(lines):
                p = cell.paragraphs[0] if k == 0 else cell.add_paragraph()
                p.add_run(f"• {text} ")
                if nums:
                    r = p.add_run(_marks(nums))
                    r.font.superscript = True
    doc.add_heading("คำถามชวนคิด (discussion)", level=2)
    for q in QUESTIONS:
        doc.add_paragraph(q, style="List Number")
    doc.add_heading("เอกสาร (documents)", level=2)
    docs = _documents(comp)
    for card, d in docs.values():
        p = doc.add_paragraph()
        p.add_run(f"{d} ").bold = True
        p.add_run(f"{card.title} ({card.publisher}, {card.published_raw or card.published or '-'}; "
                  f"doc {card.doc_id})" + (f" {card.url}" if card.url else ""))
    doc.add_heading("แหล่งที่มา (sources)", level=2)
    for n, (card, c) in enumerate(comp.sources, 1):
        p = doc.add_paragraph()
        p.add_run(f"[{n}] ").bold = True
        p.add_run(f"{docs[card.doc_id][1]}, {_where(c)}: ")
        p.add_run(f"“{' '.join(c.text.split())}”").italic = True
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(str(path))
    return path

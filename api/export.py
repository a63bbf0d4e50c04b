"""Conversation / selected results to Markdown and DOCX (python-docx), with citations."""
from __future__ import annotations

import io
import re

from km_search.thai.dates import thai_date

from .schemas import ExportIn

def date_line(published: str | None, raw: str) -> str:
    be = raw or thai_date(published)
    return " · ".join(x for x in (be, f"ค.ศ. {published}" if published else "") if x)


def _cite_line(c) -> str:
    meta = " · ".join(x for x in (c.publisher, date_line(c.published, c.published_raw)) if x)
    return f"{c.title}" + (f" — {meta}" if meta else "") + (f" — {c.link}" if c.link else "")


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>#|])", r"\\\1", text)


def to_markdown(req: ExportIn, base_url: str = "") -> str:
    out = [f"# {_md_escape(req.title)}", ""]
    for i, t in enumerate(req.conversation, 1):
        out += [f"## {i}. {_md_escape(t.question)}", ""]
        answer = re.sub(r"\\\[(\d+)\\\]", r"[\1]", _md_escape(t.answer))  # keep [n] readable
        out += [answer, ""]
        for c in t.citations:
            out.append(f"[{c.n}] {_md_escape(_cite_line(_abs(c, base_url)))}")
        out.append("")
    if req.results:
        out += ["## ผลการค้นหา / Search results", ""]
        for i, h in enumerate(req.results, 1):
            h = _abs(h, base_url)
            out.append(f"{i}. **{_md_escape(h.title)}** — {_md_escape(h.publisher)} · "
                       f"{date_line(h.published, h.published_raw)}")
            if h.snippet:
                out.append(f"   > {_md_escape(h.snippet)}")
            if h.link:
                out.append(f"   <{h.link}>")
        out.append("")
    return "\n".join(out)


def _abs(item, base_url: str):
    if item.link.startswith("/") and base_url:
        return item.model_copy(update={"link": base_url.rstrip("/") + item.link})
    return item


def to_docx(req: ExportIn, base_url: str = "") -> bytes:
    from docx import Document
    from docx.shared import Pt

    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = "TH Sarabun New"
    style.font.size = Pt(14)
    doc.add_heading(req.title, level=0)
    for i, t in enumerate(req.conversation, 1):
        doc.add_heading(f"{i}. {t.question}", level=1)
        doc.add_paragraph(t.answer)
        for c in t.citations:
            doc.add_paragraph(f"[{c.n}] {_cite_line(_abs(c, base_url))}", style="List Bullet")
    if req.results:
        doc.add_heading("ผลการค้นหา / Search results", level=1)
        for h in req.results:
            h = _abs(h, base_url)
            p = doc.add_paragraph(style="List Number")
            p.add_run(h.title).bold = True
            p.add_run(f" — {h.publisher} · {date_line(h.published, h.published_raw)}")
            if h.snippet:
                doc.add_paragraph(h.snippet)
            if h.link:
                doc.add_paragraph(h.link)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()

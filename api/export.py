"""Conversation / selected results to Markdown and DOCX (python-docx), with citations."""
from __future__ import annotations

import io
import re

from km_search.markup import md_escape, safe_url, xml_safe
from km_search.thai.dates import thai_date

from .schemas import ExportIn

def date_line(published: str | None, raw: str) -> str:
    be = raw or thai_date(published)
    return " · ".join(x for x in (be, f"ค.ศ. {published}" if published else "") if x)


def _cite_line(c, base_url: str) -> str:
    """One citation as escaped Markdown: title, publisher, date, and the link if http(s)."""
    meta = " · ".join(x for x in (c.publisher, date_line(c.published, c.published_raw)) if x)
    link = safe_url(_abs(c.link, base_url))
    return (md_escape(c.title) + (f" — {md_escape(meta)}" if meta else "")
            + (f" — <{link}>" if link else ""))


def to_markdown(req: ExportIn, base_url: str = "") -> str:
    """Every piece of sent text is escaped (a title holding ``<script>`` or ``](javascript:``
    stays literal text); only http(s) links are written, in angle brackets."""
    out = [f"# {md_escape(req.title)}", ""]
    for i, t in enumerate(req.conversation, 1):
        out += [f"## {i}. {md_escape(t.question)}", ""]
        answer = re.sub(r"\\\[(\d+)\\\]", r"[\1]", md_escape(t.answer))  # keep [n] readable
        out += [answer, ""]
        for c in t.citations:
            out.append(f"[{c.n}] {_cite_line(c, base_url)}")
        out.append("")
    if req.results:
        out += ["## ผลการค้นหา / Search results", ""]
        for i, h in enumerate(req.results, 1):
            out.append(f"{i}. **{md_escape(h.title)}** — {md_escape(h.publisher)} · "
                       f"{md_escape(date_line(h.published, h.published_raw))}")
            if h.snippet:
                out.append(f"   > {md_escape(h.snippet)}")
            link = safe_url(_abs(h.link, base_url))
            if link:
                out.append(f"   <{link}>")
        out.append("")
    return "\n".join(out)


def _abs(link: str, base_url: str) -> str:
    """This API's own relative links (``/documents/...``) made absolute with the configured
    public URL (never the request's Host header, which a client chooses)."""
    if link.startswith("/") and not link.startswith("//") and base_url:
        return base_url.rstrip("/") + link
    return link


def to_docx(req: ExportIn, base_url: str = "") -> bytes:
    """The export as DOCX; text is stripped of characters XML cannot hold (NUL, C0
    controls, lone surrogates), which made python-docx/lxml raise."""
    from docx import Document
    from docx.shared import Pt

    x = xml_safe
    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = "TH Sarabun New"
    style.font.size = Pt(14)
    doc.add_heading(x(req.title), level=0)
    for i, t in enumerate(req.conversation, 1):
        doc.add_heading(f"{i}. {x(t.question)}", level=1)
        doc.add_paragraph(x(t.answer))
        for c in t.citations:
            meta = " · ".join(v for v in (c.publisher, date_line(c.published, c.published_raw)) if v)
            link = safe_url(_abs(c.link, base_url))
            doc.add_paragraph(x(f"[{c.n}] {c.title}" + (f" — {meta}" if meta else "")
                                + (f" — {link}" if link else "")), style="List Bullet")
    if req.results:
        doc.add_heading("ผลการค้นหา / Search results", level=1)
        for h in req.results:
            p = doc.add_paragraph(style="List Number")
            p.add_run(x(h.title)).bold = True
            p.add_run(x(f" — {h.publisher} · {date_line(h.published, h.published_raw)}"))
            if h.snippet:
                doc.add_paragraph(x(h.snippet))
            link = safe_url(_abs(h.link, base_url))
            if link:
                doc.add_paragraph(link)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()

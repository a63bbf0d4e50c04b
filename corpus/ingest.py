"""Users' own documents: local files, folders and JSON Lines into Documents.

Agency reports sit on shared drives as .txt/.md/.html/.pdf/.docx; each becomes one
Document whose id is the hash of its file URL, so re-adding a changed file replaces
it. A file that cannot be read is reported with a reason and skipped; the others
still go in.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from km_search.models import Document, doc_id_for
from km_search.thai import find_date, normalize
from km_search.thai.pdfrepair import repair_thai_pdf_text
from km_search.thai.provinces import provinces_in

from .clean import clean_text

SUFFIXES = {".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".jsonl"}
MAX_BYTES = 50 * 1024 * 1024


class IngestError(Exception):
    pass


@dataclass
class IngestReport:
    documents: list[Document] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path or path:line, reason)
    skipped: list[str] = field(default_factory=list)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "cp874", "tis-620"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise IngestError("not UTF-8 or Thai (cp874/TIS-620) text")


def _html(path: Path) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(path.read_bytes(), "lxml")
    for tag in soup(["script", "style", "nav", "header", "footer", "aside", "form", "noscript"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    h1 = soup.find("h1")
    if h1 and h1.get_text(strip=True):
        title = h1.get_text(" ", strip=True)
    return title, soup.get_text("\n")


def _pdf(path: Path) -> tuple[str, str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception:
                raise IngestError("PDF is encrypted") from None
        title = (reader.metadata.title if reader.metadata and reader.metadata.title else "")
        text = "\n".join((page.extract_text() or "") for page in reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError) as e:
        raise IngestError(f"broken PDF ({type(e).__name__}: {e})") from None
    return str(title), text


def _docx(path: Path) -> tuple[str, str]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        d = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, OSError) as e:
        raise IngestError(f"broken DOCX ({type(e).__name__})") from None
    title = d.core_properties.title or ""
    parts = [p.text for p in d.paragraphs]
    for table in d.tables:
        for row in table.rows:
            parts.append(" | ".join(c.text for c in row.cells))
    return title, "\n".join(parts)


def file_document(path: Path) -> Document:
    """One local file as a Document (not .jsonl)."""
    if path.stat().st_size > MAX_BYTES:
        raise IngestError(f"file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    suffix = path.suffix.lower()
    title = ""
    if suffix in (".html", ".htm"):
        title, text = _html(path)
    elif suffix == ".pdf":
        title, text = _pdf(path)
        title = repair_thai_pdf_text(title)
    elif suffix == ".docx":
        title, text = _docx(path)
    else:
        text = _read_text(path)
    raw = text
    text = normalize(repair_thai_pdf_text(text) if suffix == ".pdf" else text)
    if not title.strip():
        first = next((ln.strip().lstrip("#").strip() for ln in text.split("\n") if ln.strip()), "")
        title = first[:200] or path.stem
    title = normalize(title).strip()
    body = clean_text(text, title)
    if not body.strip() and not title.strip():
        raise IngestError("no text could be extracted")
    url = path.resolve().as_uri()
    date = find_date(text[:2000])
    return Document(doc_id=doc_id_for(url), title=title, body=body, url=url,
                    provinces=provinces_in(body), published=date[0] if date else None,
                    published_raw=date[1] if date else "", source="file",
                    metadata={"path": str(path.resolve()),
                              **({"raw_text": raw} if text != normalize(raw) else {})})


_JSONL_KEYS = {"title", "text", "body", "url", "published", "publisher", "provinces", "id", "doc_id"}


def jsonl_documents(path: Path) -> Iterator[tuple[int, Document | str]]:
    """(line number, Document or error reason) for each non-empty line."""
    with open(path, encoding="utf-8-sig", errors="strict") as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                yield no, f"invalid JSON ({e.msg})"
                continue
            if not isinstance(rec, dict):
                yield no, "line is not a JSON object"
                continue
            body = rec.get("text") or rec.get("body") or ""
            title = rec.get("title") or ""
            if not isinstance(body, str) or not isinstance(title, str) or not (body or title).strip():
                yield no, "needs a non-empty 'text' (or 'body') or 'title' string"
                continue
            title = normalize(title).strip()
            body = clean_text(body, title)
            url = str(rec.get("url") or "")
            key = rec.get("doc_id") or rec.get("id")
            doc_id = str(key) if key else doc_id_for(url or f"jsonl:{path.resolve()}#{no}:{title}")
            published, raw = rec.get("published"), str(rec.get("published") or "")
            found = find_date(str(published)) if published else find_date(body[:2000])
            provinces = rec.get("provinces")
            yield no, Document(
                doc_id=doc_id, title=title or body[:80], body=body, url=url,
                publisher=str(rec.get("publisher") or ""),
                provinces=provinces if isinstance(provinces, list) else provinces_in(body),
                published=found[0] if found else None,
                published_raw=raw if published else (found[1] if found else ""),
                source=str(rec.get("source") or "jsonl"),
                metadata={k: v for k, v in rec.items() if k not in _JSONL_KEYS})


def collect(paths: list[Path]) -> IngestReport:
    """Read every supported file under ``paths`` (recursively)."""
    report = IngestReport()
    files: list[Path] = []
    for p in paths:
        if not p.exists():
            report.errors.append((str(p), "no such file or folder"))
        elif p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
        else:
            files.append(p)
    for f in files:
        if f.suffix.lower() not in SUFFIXES:
            report.skipped.append(str(f))
            continue
        try:
            if f.suffix.lower() == ".jsonl":
                for no, item in jsonl_documents(f):
                    if isinstance(item, str):
                        report.errors.append((f"{f}:{no}", item))
                    else:
                        report.documents.append(item)
            else:
                report.documents.append(file_document(f))
        except IngestError as e:
            report.errors.append((str(f), str(e)))
        except UnicodeDecodeError:
            report.errors.append((str(f), "not valid UTF-8"))
        except OSError as e:
            report.errors.append((str(f), e.strerror or str(e)))
    return report

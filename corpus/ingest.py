"""Users' own documents: local files, folders and JSON Lines into Documents.

Agency reports sit on shared drives as .txt/.md/.html/.pdf/.docx; each becomes one
Document whose id is the hash of its file URL, so re-adding a changed file replaces
it. A file that cannot be read is reported with a reason and skipped; the others
still go in.
"""
from __future__ import annotations

import hashlib
import json
import re
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
_SURROGATE = re.compile("[\ud800-\udfff]")
_WORDLIKE = re.compile(r"\w")  # a document needs at least one letter or digit


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
    if not _WORDLIKE.search(text) and not _WORDLIKE.search(title):
        raise IngestError("empty document: no text (only blanks or control characters such as NUL)")
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


def jsonl_record_key(path: Path, line_no: int) -> str:
    """Identity of a JSONL record without ``url``/``id``: the file and the line number.

    ``jsonl:/abs/path.jsonl#7`` (hashed by :func:`doc_id_for` into the doc_id). Re-adding
    the file after editing line 7 replaces that document; inserting lines above it shifts
    the numbers, so records that must survive reordering should carry an ``id``.
    """
    return f"jsonl:{path.resolve()}#{line_no}"


def _check_strings(value, depth: int = 0) -> None:
    """Refuse lone surrogates (\\ud800 escapes: no UTF-8 form, so SQLite and the
    tokeniser would fail later) anywhere in the record."""
    if depth > 100:
        raise IngestError("nested deeper than 100 levels")
    if isinstance(value, str):
        m = _SURROGATE.search(value)
        if m:
            raise IngestError(f"contains a lone surrogate escape (\\u{ord(m.group()):04x}) at "
                              f"character {m.start()}: not valid Unicode text")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_strings(k, depth + 1)
            _check_strings(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_strings(v, depth + 1)


def _opt_str(rec: dict, key: str) -> str:
    v = rec.get(key)
    if v is None:
        return ""
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise IngestError(f"'{key}' must be a string, not {type(v).__name__}")
    return str(v)


def _jsonl_record(path: Path, no: int, line: bytes) -> Document:
    """One JSONL line as a Document; IngestError says what is wrong with it."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise IngestError(f"not valid UTF-8 (byte 0x{line[e.start]:02x} at column {e.start + 1})") from None
    try:
        rec = json.loads(text)
    except json.JSONDecodeError as e:
        raise IngestError(f"invalid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise IngestError("JSON nested too deeply") from None
    if not isinstance(rec, dict):
        raise IngestError("line is not a JSON object")
    _check_strings(rec)
    body_v = rec.get("text") if rec.get("text") is not None else rec.get("body")
    for key, v in (("text/body", body_v), ("title", rec.get("title"))):
        if v is not None and not isinstance(v, str):
            raise IngestError(f"'{key}' must be a string, not {type(v).__name__}")
    title = normalize(rec.get("title") or "").strip()
    body = clean_text(body_v or "", title)
    if not _WORDLIKE.search(body) and not _WORDLIKE.search(title):
        raise IngestError("empty document: needs a non-empty 'text' (or 'body') or 'title' string")
    url = _opt_str(rec, "url").strip()
    key = _opt_str(rec, "doc_id") or _opt_str(rec, "id")
    if key and not _DOC_ID.match(key):  # keep ids usable in /documents/{id}: hash others
        key = hashlib.sha1(f"id:{key}".encode("utf-8")).hexdigest()[:16]
    doc_id = key or doc_id_for(url or jsonl_record_key(path, no))
    published = _opt_str(rec, "published")
    found = find_date(published) if published else find_date(body[:2000])
    provinces = rec.get("provinces")
    if provinces is not None and not (isinstance(provinces, list)
                                      and all(isinstance(p, str) for p in provinces)):
        raise IngestError("'provinces' must be a list of strings")
    return Document(
        doc_id=doc_id, title=title or body[:80], body=body, url=url,
        publisher=_opt_str(rec, "publisher"),
        provinces=provinces if provinces is not None else provinces_in(body),
        published=found[0] if found else None,
        published_raw=published if published else (found[1] if found else ""),
        source=_opt_str(rec, "source") or "jsonl",
        metadata={k: v for k, v in rec.items() if k not in _JSONL_KEYS})


_DOC_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # what the API accepts as a doc_id


def jsonl_documents(path: Path) -> Iterator[tuple[int, Document | str]]:
    """(line number, Document or error reason) for each non-empty line.

    Read as bytes and decoded line by line, so one bad byte, escape or nesting costs
    that line only (with its number), never the rest of the file.
    """
    with open(path, "rb") as fh:
        for no, line in enumerate(fh, 1):
            if no == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if not line.strip():
                continue
            try:
                yield no, _jsonl_record(path, no, line)
            except IngestError as e:
                yield no, str(e)


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

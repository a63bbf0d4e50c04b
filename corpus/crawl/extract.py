"""Page extraction: decoding, list pages (article and pagination links), article pages
(title, body without navigation/share boxes/view counters, Thai date, publisher,
provinces, attachments) and PDF/DOCX attachments (via corpus.ingest)."""
from __future__ import annotations

import codecs
import os
import re
import tempfile
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit

from bs4 import BeautifulSoup

from corpus.clean import clean_text
from corpus.ingest import IngestError, _docx, _pdf
from km_search.thai import find_date, normalize

from .config import Source
from km_search.thai.pdfrepair import repair_thai_pdf_text

_ALIASES = {"windows-874": "cp874", "x-windows-874": "cp874", "tis-620": "cp874",
            "tis620": "cp874", "iso-8859-11": "cp874", "x-mac-thai": "cp874"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)


class ExtractError(Exception):
    pass


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    name = _ALIASES.get(name.strip().lower(), name.strip().lower())
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_html(content: bytes, content_type: str = "") -> str:
    """HTML bytes to text: header charset, then <meta>, then UTF-8, then Thai cp874."""
    declared = []
    m = _HEADER_CHARSET.search(content_type or "")
    if m:
        declared.append(_codec(m.group(1)))
    m = _META_CHARSET.search(content[:4096])
    if m:
        declared.append(_codec(m.group(1).decode("ascii", "ignore")))
    for enc in [d for d in declared if d] + ["utf-8", "cp874"]:
        try:
            return content.decode(enc)
        except UnicodeDecodeError:
            continue
    return content.decode("utf-8", errors="replace")


def _soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "lxml")


def _abs(base: str, href: str | None) -> str | None:
    if not href or href.startswith(("javascript:", "mailto:", "tel:", "#")):
        return None
    return urldefrag(urljoin(base, href.strip()))[0]


def _select(soup: BeautifulSoup, selector: str):
    try:
        return soup.select(selector) if selector else []
    except Exception:  # a bad selector in a user's config: treat as no match
        return []


def is_attachment(url: str) -> bool:
    return urlsplit(url).path.lower().endswith((".pdf", ".docx"))


def parse_list(html: str, url: str, source: Source) -> tuple[list[tuple[str, str]], list[str]]:
    """([(article URL, anchor text)], [next-page URLs]) found on a list page."""
    soup = _soup(html)
    nexts = []
    for a in _select(soup, source.next_page):
        u = _abs(url, a.get("href"))
        if u and u != url and u not in nexts:
            nexts.append(u)
    articles: list[tuple[str, str]] = []
    seen = set(nexts) | {url}
    for a in _select(soup, source.article_links):
        u = _abs(url, a.get("href"))
        if not u or u in seen:
            continue
        if source.article_pattern and not is_attachment(u) and not re.search(
                source.article_pattern, urlsplit(u).path):
            continue
        seen.add(u)
        articles.append((u, a.get_text(" ", strip=True)))
    return articles, nexts


@dataclass
class Article:
    title: str
    body: str
    published: str | None = None
    published_raw: str = ""
    publisher: str = ""
    attachments: list[tuple[str, str]] = field(default_factory=list)


def parse_article(html: str, url: str, source: Source) -> Article:
    soup = _soup(html)
    attachments: list[tuple[str, str]] = []
    for a in _select(soup, source.attachments):
        u = _abs(url, a.get("href"))
        if u and u not in [x for x, _ in attachments]:
            attachments.append((u, a.get_text(" ", strip=True)))
    title = ""
    for el in _select(soup, source.title):
        title = el.get_text(" ", strip=True)
        if title:
            break
    if not title and soup.title:
        title = soup.title.get_text(" ", strip=True)
    date_text = " ".join(el.get_text(" ", strip=True) for el in _select(soup, source.date)[:3])
    publisher = source.publisher
    if not publisher and source.publisher_selector:
        el = next(iter(_select(soup, source.publisher_selector)), None)
        publisher = el.get_text(" ", strip=True) if el else ""
    if not publisher:
        meta = soup.find("meta", attrs={"property": "og:site_name"})
        publisher = (meta.get("content") or "").strip() if meta else ""
    for sel in source.remove:
        for el in _select(soup, sel):
            el.decompose()
    main = next(iter(_select(soup, source.body)), None) or soup.body or soup
    for el in main.find_all(["p", "div", "br", "li", "h2", "h3", "h4", "tr"]):
        el.insert_after("\n")
    text = main.get_text("")
    title = normalize(title).strip()
    body = clean_text(text, title)
    if not title and not body:
        raise ExtractError("no title or text found on the page")
    found = find_date(date_text) if date_text else None
    found = found or find_date(body[:2000])
    return Article(title=title or body[:120], body=body, published=found[0] if found else None,
                   published_raw=found[1] if found else "", publisher=publisher,
                   attachments=attachments)


@dataclass
class Attachment:
    title: str
    body: str
    raw_text: str = ""
    repaired: bool = False
    published: str | None = None
    published_raw: str = ""


def parse_attachment(content: bytes, url: str, anchor: str = "") -> Attachment:
    """Text of a PDF (repaired, raw kept) or DOCX, via corpus.ingest's readers."""
    suffix = ".pdf" if urlsplit(url).path.lower().endswith(".pdf") else ".docx"
    if suffix == ".pdf" and not content.startswith(b"%PDF"):
        raise ExtractError("not a PDF (no %PDF header)")
    fd, tmp = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        from pathlib import Path

        try:
            title, text = (_pdf if suffix == ".pdf" else _docx)(Path(tmp))
        except IngestError as e:
            raise ExtractError(str(e)) from None
        except Exception as e:  # pypdf raises many types on damaged files
            raise ExtractError(f"unreadable {suffix[1:].upper()} ({type(e).__name__}: {e})") from None
    finally:
        os.unlink(tmp)
    raw = text
    repaired = False
    if suffix == ".pdf":
        text = repair_thai_pdf_text(text)
        repaired = text != raw
    text = normalize(text)
    title = normalize(title or anchor or "").strip()
    if not title:
        title = next((ln.strip() for ln in text.split("\n") if ln.strip()), "")[:200] \
            or os.path.basename(urlsplit(url).path)
    body = clean_text(text, title)
    if not body.strip():
        raise ExtractError("no text could be extracted (scanned or empty document?)")
    found = find_date(text[:2000])
    return Attachment(title=title, body=body, raw_text=raw, repaired=repaired,
                      published=found[0] if found else None, published_raw=found[1] if found else "")

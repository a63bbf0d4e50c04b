"""Page extraction with no per-site configuration.

An HTML page is decoded (header charset, <meta>, UTF-8, then Thai cp874/TIS-620), the
site chrome of corpus.crawl.chrome is removed (plus the source's ``remove``), and then:

* **body**: trafilatura's main-content extraction, or the longest match of the source's
  ``body`` selector when one is configured (the first match in document order is often an
  Elementor "recommended post");
* **title**: the source's ``title`` selector; else og:title; else a heading in the content
  that the page's <title> or the link's anchor text confirms; else the first <h1>; else the
  <title> without the site name;
* **date**: corpus.crawl.dates (machine-readable first, Thai B.E. forms, htmldate);
* **kind**: "article" (a document), "list" (links to follow, no document) or "other" (menu,
  contact and other pages without a dated text of their own).

Attachments are recognised by content (magic bytes), Content-Type and
Content-Disposition, not by the URL's suffix (``download.php?file=x.pdf``).
"""
from __future__ import annotations

import codecs
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from bs4 import BeautifulSoup

from corpus.clean import clean_text
from corpus.ingest import IngestError, _docx, _pdf
from km_search.thai import normalize

from . import dates
from .chrome import DEFAULT_REMOVE, KEEP_INSIDE, RELATED_HEADINGS
from .config import Source
from km_search.thai.pdfrepair import repair_thai_pdf_text

from .urls import absolute, canonical

_ALIASES = {"windows-874": "cp874", "x-windows-874": "cp874", "tis-620": "cp874",
            "tis620": "cp874", "iso-8859-11": "cp874", "x-mac-thai": "cp874"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_DOC_SUFFIXES = (".pdf", ".docx")
_TITLE_SEPARATORS = re.compile(r"\s+[|\-–—:»·]+\s+|\s*::\s*|\s*\|\s*")
_NEXT_WORDS = {"ถัดไป", "หน้าถัดไป", "next", "next page", "»", "›", ">", ">>", "ต่อไป"}
_PAGE_PARAM = re.compile(r"(?:[?&](?:page|p|start|limitstart|pg|paged)=\d+|/page/\d+)", re.I)
# converter placeholders and file names are not titles: "Microsoft Word - x.docx", "pmqa40_guide"
_BAD_PDF_TITLE = re.compile(r"^(?:microsoft\s+(?:word|powerpoint|excel)\s*-|untitled|document\d*$)|"
                            r"\.(?:docx?|xlsx?|pptx?|pdf)\s*$|^[\x21-\x7e]*[_.][\x21-\x7e]*$", re.I)


class ExtractError(Exception):
    pass


# decoding --------------------------------------------------------------------------------
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


# content types ---------------------------------------------------------------------------
def _disposition_name(disposition: str) -> str:
    m = re.search(r"filename\*\s*=\s*[^']*''([^;]+)", disposition or "", re.I)
    if m:
        return unquote(m.group(1)).strip().strip('"')
    m = re.search(r"filename\s*=\s*\"?([^\";]+)", disposition or "", re.I)
    return m.group(1).strip() if m else ""


def _named_suffix(url: str) -> str:
    """.pdf/.docx when the URL's path or a query value (download.php?file=x.pdf) names one."""
    parts = urlsplit(url)
    names = [parts.path] + [v for _, v in parse_qsl(parts.query)]
    for n in names:
        low = n.lower()
        for suf in _DOC_SUFFIXES:
            if low.endswith(suf):
                return suf
    return ""


def looks_like_attachment(url: str) -> bool:
    """A guess from the URL alone, used only to label links before they are fetched."""
    return bool(_named_suffix(url))




def sniff_type(content: bytes, content_type: str = "", disposition: str = "", url: str = "") -> str:
    """"pdf", "docx", "html" or "other": magic bytes first, then the headers, then the URL."""
    head = content[:1024].lstrip()
    if head.startswith(b"%PDF"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        try:
            names = zipfile.ZipFile(BytesIO(content)).namelist()
        except zipfile.BadZipFile:
            return "other"
        return "docx" if any(n.startswith("word/") for n in names) else "other"
    low = head[:512].lower()
    if low.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<html" in low or b"<body" in low:
        return "html"
    ctype = (content_type or "").lower()
    named = _named_suffix(_disposition_name(disposition)) or _named_suffix(url)
    if "pdf" in ctype or named == ".pdf":
        return "pdf"  # claims to be a PDF but has no %PDF header: parse_attachment says so
    if "wordprocessingml" in ctype or named == ".docx":
        return "docx"
    if "html" in ctype or not ctype:
        return "html"
    return "other"


# chrome removal ----------------------------------------------------------------------------
def _soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "lxml")


def _select(root, selector: str):
    try:
        return root.select(selector) if selector else []
    except Exception:  # a bad selector in a user's config: treat as no match
        return []


_DEFAULT_REMOVE_SEL = ", ".join(DEFAULT_REMOVE)


def _alternatives(selector: str) -> list[str]:
    """Split a selector list on its top-level commas ("h1, .title" -> ["h1", ".title"])."""
    out, depth, cur, quote = [], 0, "", ""
    for ch in selector:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    return [s for s in [*out, cur.strip()] if s]


def select_preferred(root, selector: str) -> list:
    """Matches of the first alternative in a selector list that matches anything: a user's
    "h1, .content-title" means "h1, else .content-title", not "whichever comes first"."""
    for alt in _alternatives(selector or ""):
        found = _select(root, alt)
        if found:
            return found
    return []


def strip_chrome(soup: BeautifulSoup, extra: list[str] | tuple[str, ...] = ()) -> None:
    """Remove the default chrome, the source's extra selectors and related-post blocks."""
    targets = _select(soup, _DEFAULT_REMOVE_SEL) + [el for sel in extra for el in _select(soup, sel)]
    if True:  # one soupsieve pass over the page for the whole default list (90 selectors)
        for el in targets:
            if el.decomposed:
                continue
            if el.name == "header" and el.find_parent(KEEP_INSIDE):
                continue  # <article><header><h1>…: the article's own heading
            if el.name in ("body", "html"):
                continue
            el.decompose()
    for block in soup.find_all(["td", "ul", "ol", "div", "table", "section"]):
        if block.decomposed or block.find_parent(KEEP_INSIDE) is not None:
            continue
        links = block.find_all("a")
        text = block.get_text(" ", strip=True)
        if len(links) >= 3 and text:
            in_links = sum(len(a.get_text(" ", strip=True)) for a in links)
            if in_links / len(text) > 0.6 and len(text) - in_links < 200:
                block.decompose()  # a menu: mostly link text, little else (table layouts)
    for h in soup.find_all(["h2", "h3", "h4", "h5", "h6", "div", "span", "strong", "p"]):
        if h.decomposed:
            continue
        text = h.get_text(" ", strip=True).lower()
        if text and len(text) <= 40 and any(text.startswith(r.lower()) for r in RELATED_HEADINGS):
            block = h.parent
            if block is not None and block.name not in ("body", "html", "main", "article"):
                block.decompose()
            else:
                h.decompose()


# pages ---------------------------------------------------------------------------------------
@dataclass
class Page:
    kind: str  # article | list | other
    title: str = ""
    body: str = ""
    published: str | None = None
    published_raw: str = ""
    publisher: str = ""
    canonical: str | None = None  # rel=canonical, when it points inside the same host
    attachments: list[tuple[str, str]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # in-site links (menus too)
    next_pages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _text(el) -> str:
    return normalize(el.get_text(" ", strip=True)).strip() if el is not None else ""


def _meta(soup, *keys: str) -> str:
    for k in keys:
        el = soup.find("meta", attrs={"property": k}) or soup.find("meta", attrs={"name": k})
        if el and el.get("content"):
            return normalize(el["content"]).strip()
    return ""


def _title_parts(raw: str, site: str) -> list[str]:
    parts = [p.strip() for p in _TITLE_SEPARATORS.split(raw) if p and p.strip()]
    if site:
        parts = [p for p in parts if p != site] or parts
    return parts


def _same(a: str, b: str) -> bool:
    fa, fb = re.sub(r"\W+", "", a).lower(), re.sub(r"\W+", "", b).lower()
    return bool(fa) and bool(fb) and (fa in fb or fb in fa) and min(len(fa), len(fb)) >= 6


# heading-like elements, most prominent first (old table layouts title with <font size=4><b>)
_HEADING_RANKS = ("h1", "h2", "[itemprop=headline]", "font[size='4'], font[size='5'], font[size='+1'], "
                  "font[size='+2']", "[class*=title], [class*=headline], [class*=topic]", "h3",
                  "td > b, td > strong, p > b, p > strong, font > b")


def _is_date_line(t: str) -> bool:
    found = dates.first_date(t, skip_today=False)
    return bool(found) and len(t) - len(found[1]) < 12


def _title(soup, clean, source: Source, anchor: str, site: str) -> tuple[str, str]:
    """(title, where it came from)."""
    for el in select_preferred(clean, source.title):
        t = _text(el)
        if t:
            return t, "selector"
    raw_title = normalize(soup.title.get_text(" ", strip=True)).strip() if soup.title else ""
    og = _meta(soup, "og:title", "twitter:title")
    if og and og != site:
        parts = _title_parts(og, site)
        return max(parts, key=len) if len(parts) > 1 and site else og, "og:title"
    ranked: list[str] = []
    for sel in _HEADING_RANKS:
        for el in _select(clean, sel):
            t = _text(el)
            if 6 <= len(t) <= 300 and t != site and not _is_date_line(t) and t not in ranked:
                ranked.append(t)
    title_is_site = bool(site) and (raw_title == site or not _title_parts(raw_title, site)
                                     or _title_parts(raw_title, site) == [site])
    for t in ranked:  # a heading the <title> or the list's anchor text confirms
        if (raw_title and not title_is_site and _same(t, raw_title)) or (anchor and _same(t, anchor)):
            return t, "heading"
    h1 = next((t for t in (_text(el) for el in clean.find_all("h1")) if t and t != site), "")
    if h1:
        return h1, "h1"
    parts = [p for p in _title_parts(raw_title, site) if p != site]
    if parts and not title_is_site:
        return max(parts, key=len), "title"
    if ranked:
        return ranked[0], "heading"
    if anchor and len(anchor) >= 6:
        return anchor, "anchor"
    return raw_title, "fallback"


def _site_name(soup) -> str:
    return _meta(soup, "og:site_name", "application-name")


def _pagination(clean_links, soup, url: str, source: Source) -> tuple[list[str], list[str], bool]:
    """(next links from selectors/words, numbered page links, whether numbers were seen)."""
    nexts: list[str] = []
    for a in _select(soup, source.next_page):
        u = absolute(url, a.get("href"))
        if u and u != canonical(url) and u not in nexts:
            nexts.append(u)
    numbered: list[str] = []
    for a in clean_links:
        text = a.get_text(" ", strip=True).lower()
        u = absolute(url, a.get("href"))
        if not u or u == canonical(url):
            continue
        if text in _NEXT_WORDS or "next" in " ".join(a.get("class") or []).lower() \
                or a.get("rel") == ["next"]:
            if u not in nexts:
                nexts.append(u)
        elif text.isdigit() and _PAGE_PARAM.search(u) and u not in numbered:
            numbered.append(u)
    return nexts, numbered, bool(numbered)


def _element_text(el) -> str:
    for br in el.find_all("br"):
        br.replace_with("\n")
    for child in el.find_all(["p", "div", "li", "h2", "h3", "h4", "tr", "td"]):
        child.insert_after("\n")
    return el.get_text("")


def _table_cells(text: str) -> str:
    """trafilatura writes table rows as "| a | b |"; a layout table's cells are lines."""
    out = []
    for line in text.split("\n"):
        s = line.strip()
        if s.startswith("|") and s.endswith("|"):
            if set(s) <= set("|-: "):
                continue  # the markdown header rule
            out += [c.strip() for c in s.strip("|").split(" | ") if c.strip()]
        else:
            out.append(line)
    return "\n".join(out)


def _body_text(clean, html_clean: str, url: str, source: Source) -> str:
    if source.body:
        matches = select_preferred(clean, source.body)
        if matches:  # the longest match, not the first: that is often a teaser block
            return _element_text(max(matches, key=lambda el: len(el.get_text(" ", strip=True))))
    import trafilatura

    text = trafilatura.extract(html_clean, url=url or None, include_comments=False,
                               include_tables=True, favor_recall=True, deduplicate=False)
    if text and len(text) >= 80:
        return _table_cells(text)
    return _element_text(clean.find("main") or clean.find("article") or clean.body or clean)


def _published(soup, clean, html: str, url: str, source: Source, title: str,
               body: str) -> tuple[str | None, str]:
    got = dates.machine_date(soup, clean)
    if not got and source.date:
        text = " ".join(el.get_text(" ", strip=True) for el in select_preferred(clean, source.date)[:3])
        got = dates.first_date(text)
    if not got:
        got = dates.hinted_date(clean.body or clean)
    if not got and title:  # the line(s) right under the headline
        flat = normalize(clean.get_text(" ", strip=True))
        at = flat.find(title[:30])
        if at >= 0:
            got = dates.first_date(flat[at + len(title): at + len(title) + 160])
    if not got:
        iso = dates.htmldate_guess(html, url)
        if iso:
            got = (iso, "")
    if not got:
        got = dates.first_date(body[:400])
    return (got[0], got[1]) if got else (None, "")


def drop_lines(body: str, boilerplate: frozenset[str] | set[str] = frozenset()) -> str:
    """The body without known boilerplate lines and without a header clock (a line that
    is only today's date)."""
    today = {date.today().isoformat(), (date.today() - timedelta(days=1)).isoformat()}
    out = []
    for line in body.split("\n"):
        if line in boilerplate:
            continue
        found = dates.first_date(line, skip_today=False) if len(line) <= 80 else None
        if found and found[0] in today:
            continue  # a short line carrying today's date: the header clock
        out.append(line)
    return "\n".join(out)


def site_title(html: str) -> str:
    """The site's name as its home page's <title> gives it (the longest part)."""
    soup = _soup(html)
    raw = normalize(soup.title.get_text(" ", strip=True)).strip() if soup.title else ""
    return _site_name(soup) or max(_title_parts(raw, ""), key=len, default="")


def parse_page(html: str, url: str, source: Source, *, anchor: str = "",
               expect: str = "auto", site: str = "", boilerplate: frozenset[str] = frozenset()) -> Page:
    """Extract one HTML page. ``expect`` is "article" or "list" when the source's selectors
    already decided what the page is, else "auto" (detected here). ``site`` is the site's
    name when known (from its home page), so it is never taken for a title; ``boilerplate``
    holds lines already seen on most of the site's pages (dropped from the body)."""
    soup = _soup(html)
    site = _site_name(soup) or site
    rel = soup.find("link", rel="canonical")
    canon = absolute(url, rel.get("href")) if rel is not None else None
    if canon and urlsplit(canon).netloc != urlsplit(url).netloc:
        canon = None
    publisher = source.publisher
    if not publisher and source.publisher_selector:
        publisher = _text(next(iter(_select(soup, source.publisher_selector)), None))
    attachments: list[tuple[str, str]] = []
    sel_att = _select(soup, source.attachments) if source.attachments else []
    for a in sel_att + soup.find_all("a", href=True):
        u = absolute(url, a.get("href"))
        if u and looks_like_attachment(u) and u not in [x for x, _ in attachments]:
            attachments.append((u, a.get_text(" ", strip=True)))
    clean = _soup(html)
    strip_chrome(clean, source.remove)
    clean_links = clean.find_all("a", href=True)
    nexts, numbered, saw_numbers = _pagination(clean_links, soup, url, source)
    page = Page(kind="other", canonical=canon, attachments=attachments)
    warn_missed = saw_numbers and not nexts
    page.next_pages = nexts + [u for u in numbered if u not in nexts]
    own = canonical(url)
    long_links = []
    for a in clean_links:
        u = absolute(url, a.get("href"))
        if u and u != own and u not in page.next_pages and not looks_like_attachment(u) \
                and len(a.get_text(" ", strip=True)) >= 15:
            long_links.append(u)
    found: dict[str, str] = {}
    for a in soup.find_all("a", href=True):  # menus too: they lead to the news lists
        u = absolute(url, a.get("href"))
        if u and u != own and u not in page.next_pages and not looks_like_attachment(u):
            t = a.get_text(" ", strip=True)
            if len(t) > len(found.get(u, "")) or u not in found:
                found[u] = t  # the longest anchor text: a menu's "ข่าว" loses to the headline
    page.links = list(found.items())
    n_long = len(set(long_links))
    is_home = urlsplit(own).path in ("", "/") and not urlsplit(own).query
    if expect == "auto" and 3 <= n_long < 5:  # a few teasers, each with its own date: a list
        n_dates = len({iso for _, iso, _ in dates.thai_dates(clean.get_text(" ", strip=True))})
        many_dates = n_dates >= 3
    else:
        many_dates = False
    if expect == "list" or (expect == "auto" and (n_long >= 5 or many_dates or is_home
                                                  or (page.next_pages and n_long >= 2))):
        page.kind = "list"
        if warn_missed and source.next_page:
            page.warnings.append(f"list page shows numbered pages but no next-page link matched "
                                 f"{source.next_page!r}; following the numbered links instead")
        return page
    html_clean = str(clean)
    title, _how = _title(soup, clean, source, anchor, site)
    body = drop_lines(clean_text(_body_text(clean, html_clean, url, source), title), boilerplate)
    published, raw = _published(soup, clean, html, url, source, title, body)
    if not publisher:
        publisher = site or next((p for p in _title_parts(
            normalize(soup.title.get_text(" ", strip=True)) if soup.title else "", "")
            if p != title), "")
    page.title, page.body, page.published, page.published_raw = title, body, published, raw
    page.publisher = publisher
    if expect == "article":
        if not title and not body:
            raise ExtractError("no title or text found on the page")
        page.kind = "article"
        page.title = title or body[:120]
    elif len(body) >= 200 and published:
        page.kind = "article"
    return page


def parse_list(html: str, url: str, source: Source) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """([(article URL, anchor text)], [next-page URLs], warnings) of a configured list page."""
    soup = _soup(html)
    clean = _soup(html)
    for sel in ("script", "style", "noscript"):
        for el in clean.select(sel):
            el.decompose()
    nexts, numbered, saw_numbers = _pagination(clean.find_all("a", href=True), soup, url, source)
    warnings = []
    if saw_numbers and not nexts:
        warnings.append(f"list page shows numbered pages but no next-page link matched "
                        f"{source.next_page!r}; following the numbered links instead")
    nexts = nexts + [u for u in numbered if u not in nexts]
    articles: list[tuple[str, str]] = []
    seen = set(nexts) | {canonical(url)}
    for a in _select(soup, source.article_links or "a"):
        u = absolute(url, a.get("href"))
        if not u or u in seen:
            continue
        if source.article_pattern and not looks_like_attachment(u) and not re.search(
                source.article_pattern, urlsplit(u).path):
            continue
        seen.add(u)
        articles.append((u, a.get_text(" ", strip=True)))
    return articles, nexts, warnings


# attachments ---------------------------------------------------------------------------------
@dataclass
class Attachment:
    title: str
    body: str
    raw_text: str = ""
    repaired: bool = False
    published: str | None = None
    published_raw: str = ""


def _heading_line(text: str) -> str:
    """The first line that is more than a date or a page number: the document's heading."""
    for ln in text.split("\n"):
        ln = ln.strip()
        found = dates.first_date(ln, skip_today=False)
        if len(ln) >= 6 and not (found and len(ln) - len(found[1]) < 8):
            return ln[:200]
    return ""


def parse_attachment(content: bytes, url: str, anchor: str = "", kind: str | None = None,
                     filename: str = "") -> Attachment:
    """Text of a PDF (Thai damage repaired, raw kept) or DOCX, via corpus.ingest's readers.

    The title is the file's own metadata title unless it is a converter's placeholder
    ("Microsoft Word - report_final.docx"); then the document's first heading line, the
    link's anchor text, or the file name."""
    kind = kind or sniff_type(content, url=url)
    if kind not in ("pdf", "docx"):
        raise ExtractError(f"not a PDF or DOCX ({kind})")
    if kind == "pdf" and not content.lstrip().startswith(b"%PDF"):
        raise ExtractError("not a PDF (no %PDF header)")
    fd, tmp = tempfile.mkstemp(suffix="." + kind)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        try:
            title, text = (_pdf if kind == "pdf" else _docx)(Path(tmp))
        except IngestError as e:
            raise ExtractError(str(e)) from None
        except Exception as e:  # pypdf raises many types on damaged files
            raise ExtractError(f"unreadable {kind.upper()} ({type(e).__name__}: {e})") from None
    finally:
        os.unlink(tmp)
    raw = text
    repaired = False
    if kind == "pdf":
        text = repair_thai_pdf_text(text)
        repaired = text != raw
    text = normalize(text)
    title = normalize(title or "").strip()
    if not title or _BAD_PDF_TITLE.search(title):
        title = _heading_line(text) or normalize(anchor or "").strip() or \
            filename or os.path.basename(urlsplit(url).path)
    body = clean_text(text, title)
    if not body.strip():
        raise ExtractError("no text could be extracted (scanned or empty document?)")
    found = dates.first_date(text[:2000])
    return Attachment(title=title, body=body, raw_text=raw, repaired=repaired,
                      published=found[0] if found else None, published_raw=found[1] if found else "")


def attachment_filename(disposition: str, url: str) -> str:
    return _disposition_name(disposition) or os.path.basename(urlsplit(url).path)

"""Publication dates of crawled pages.

Order (first hit wins), because the first date in a Thai page's text is usually the
header's "today" date or the event date, not the publication date:

1. machine-readable: ``article:published_time``-style meta, JSON-LD ``datePublished``,
   ``time[datetime]`` inside the content;
2. the source's ``date`` selector, when one is configured;
3. date-like elements (class/itemprop with date, time, posted, published, created,
   submitted, meta) and the lines between the title and the body text;
4. htmldate on the whole page (it knows many CMS layouts but not B.E. years).

Thai forms that km_search.thai.find_date does not read are added here: day-first numeric
dates with B.E. years (15/03/2566, 08.01.59) and B.E. ISO-like forms (2566-03-15). A
date equal to the crawl day is dropped unless machine-readable: that is a header clock.
"""
from __future__ import annotations

import json
import re
from datetime import date, timedelta

from km_search.thai import find_date
from km_search.thai.dates import year_ce
from km_search.thai.normalize import thai_to_arabic_digits

_DMY = re.compile(r"(?<!\d)(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4}|\d{2})(?!\d)")
_YMD = re.compile(r"(?<!\d)(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})(?!\d)")
_META_NAMES = ("article:published_time", "og:published_time", "datepublished", "date",
               "dc.date", "dc.date.issued", "dcterms.issued", "dcterms.created", "pubdate",
               "publishdate", "publish-date", "publication_date", "sailthru.date")
DATE_HINT = re.compile(r"date|time|posted|publish|created|submitted|entry-meta|post-meta|"
                       r"article-info|meta|วันที่", re.I)
_MIN_YEAR = 1990
_MONTH_WORD = re.compile(r"(?<=[\d๐-๙])\s*เดือน(?=\s*[ก-ฮ])")


def _valid(y: int, m: int, d: int) -> str | None:
    try:
        got = date(y, m, d)
    except ValueError:
        return None
    if got.year < _MIN_YEAR or got > date.today() + timedelta(days=366):
        return None
    return got.isoformat()


def thai_dates(text: str) -> list[tuple[int, str, str]]:
    """Every date in ``text`` as (position, ISO C.E., original text), in text order."""
    if not text:
        return []
    # "5 เดือนกันยายน 2566": the word "month" before the name; blanked to spaces (same length)
    orig = text
    text = _MONTH_WORD.sub(lambda m: " " * len(m.group(0)), text)
    folded = thai_to_arabic_digits(text)  # same length: Thai digits are one char each
    out: list[tuple[int, str, str]] = []
    for rx, order in ((_YMD, "ymd"), (_DMY, "dmy")):
        for m in rx.finditer(folded):
            a, b, c = (int(g) for g in m.groups())
            y, mo, d = (a, b, c) if order == "ymd" else (c, b, a)
            iso = _valid(year_ce(y), mo, d)
            if iso and not any(p <= m.start() < p + len(r) for p, _, r in out):
                out.append((m.start(), iso, orig[m.start():m.end()]))
    # month names (Thai and English) through the library parser, one match at a time
    pos = 0
    while pos < len(text):
        found = find_date(text[pos:])
        if not found:
            break
        at = text.find(found[1], pos)
        if at < 0:
            break
        y = int(found[0][:4])
        iso = found[0] if y < 2200 else None  # library read a B.E. ISO form as C.E.
        if iso and _valid(int(iso[:4]), int(iso[5:7]), int(iso[8:10])) \
                and not any(p <= at < p + len(r) for p, _, r in out):
            out.append((at, iso, orig[at:at + len(found[1])]))
        pos = at + max(1, len(found[1]))
    return sorted(out)


def first_date(text: str, *, skip_today: bool = True) -> tuple[str, str] | None:
    """(ISO, original) of the first date in ``text``, not counting today's (a header clock)."""
    today = {date.today().isoformat(), (date.today() - timedelta(days=1)).isoformat()}
    for _, iso, raw in thai_dates(text):
        if skip_today and iso in today:
            continue
        return iso, raw
    return None


def _iso_prefix(value: str) -> tuple[str, str] | None:
    value = (value or "").strip()
    m = _YMD.match(thai_to_arabic_digits(value))
    if m:
        iso = _valid(year_ce(int(m[1])), int(m[2]), int(m[3]))
        if iso:
            return iso, value
    return first_date(value, skip_today=False)


def _jsonld_dates(node) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("datePublished", "dateCreated") and isinstance(v, str):
                out.append(v)
            elif isinstance(v, (dict, list)):
                out += _jsonld_dates(v)
    elif isinstance(node, list):
        for v in node:
            out += _jsonld_dates(v)
    return out


def machine_date(soup, content=None) -> tuple[str, str] | None:
    """Date from meta tags, JSON-LD, or a time[datetime] inside ``content`` (else the page)."""
    for meta in soup.find_all("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        if key in _META_NAMES and meta.get("content"):
            got = _iso_prefix(meta["content"])
            if got:
                return got
    for script in soup.find_all("script", attrs={"type": "application/ld+json"}):
        try:
            data = json.loads(script.string or "")
        except (ValueError, TypeError):
            continue
        for v in _jsonld_dates(data):
            got = _iso_prefix(v)
            if got:
                return got
    for t in (content or soup).select("time[datetime], [itemprop=datePublished]"):
        got = _iso_prefix(t.get("datetime") or t.get("content") or t.get_text(" ", strip=True))
        if got:
            return got
    return None


def hinted_date(root) -> tuple[str, str] | None:
    """First date in an element whose class/id/itemprop says it holds a date."""
    for el in root.find_all(True):
        attrs = " ".join([*(el.get("class") or []), el.get("id") or "", el.get("itemprop") or ""])
        if attrs.strip() and DATE_HINT.search(attrs):
            text = el.get_text(" ", strip=True)
            if len(text) <= 200:
                got = first_date(text)
                if got:
                    return got
    return None


def htmldate_guess(html: str, url: str = "") -> str | None:
    """htmldate's guess (original publication date), C.E. only; None when unsure."""
    try:
        from htmldate import find_date as _htmldate

        got = _htmldate(html, original_date=True, extensive_search=False, url=url or None,
                        max_date=(date.today() + timedelta(days=1)).isoformat())
    except Exception:  # htmldate raises on odd markup; the other strategies already ran
        return None
    if got and got[:10] not in (date.today().isoformat(),):
        return got[:10]
    return None

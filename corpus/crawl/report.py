"""Score crawled documents against a hand-written answer key.

An answer key is JSON: ``{"documents": {path: {"title", "published"}}, "not_documents":
[path, ...], "markers": [text that only the site's chrome contains, ...]}``; paths are
the URL's path and query on the site. ``km-search crawl --report KEY.json SOURCE`` prints
the table for a source already crawled; the crawler tests score their fixture sites with
the same code.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from km_search.models import Document

from .urls import canonical


@dataclass
class Score:
    site: str
    config: str
    expected: int = 0
    found: int = 0
    title_right: int = 0
    date_right: int = 0
    with_chrome: int = 0
    extra: int = 0  # documents for pages that are not documents (menus, lists, contact)
    duplicates: int = 0  # documents whose URL differs from another's only by trackers
    misses: list[str] = field(default_factory=list)

    def pct(self, n: int) -> float:
        return 100.0 * n / self.found if self.found else 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _path(url: str) -> str:
    p = urlsplit(url)
    return p.path + ("?" + p.query if p.query else "")


def score(docs: list[Document], key: dict, *, site: str = "", config: str = "") -> Score:
    """Found / title / date / chrome / extra / duplicate counts for one site's documents."""
    got: dict[str, Document] = {}
    sc = Score(site, config, expected=len(key["documents"]))
    canon_seen: set[str] = set()
    for d in docs:
        c = canonical(d.url)
        if c in canon_seen or c != d.url:
            sc.duplicates += 1
        canon_seen.add(c)
        got[_path(c)] = d
    markers = [m for m in key.get("markers", []) if m]
    for path, exp in key["documents"].items():
        d = got.get(path)
        if d is None:
            sc.misses.append(f"{path}: not found")
            continue
        sc.found += 1
        if " ".join(d.title.split()) == " ".join(exp["title"].split()):
            sc.title_right += 1
        else:
            sc.misses.append(f"{path}: title {d.title!r}")
        if d.published == exp["published"]:
            sc.date_right += 1
        else:
            sc.misses.append(f"{path}: date {d.published}")
        chrome = [m for m in markers if m in d.body or m in d.title]
        if chrome:
            sc.with_chrome += 1
            sc.misses.append(f"{path}: chrome {chrome}")
    sc.extra = sum(1 for p in got if p not in key["documents"])
    sc.misses += [f"{p}: not a document" for p in got if p not in key["documents"]]
    return sc


def table(scores: list[Score]) -> str:
    """A markdown table, one row per (site, config), plus a total row per config."""
    head = ("| site | config | found | title right | date right | docs with chrome | extra (menu/list) docs "
            "| tracking duplicates |\n|---|---|---|---|---|---|---|---|")
    rows = [head]

    def row(s: Score) -> str:
        return (f"| {s.site} | {s.config} | {s.found}/{s.expected} | {s.title_right} ({s.pct(s.title_right):.0f}%) "
                f"| {s.date_right} ({s.pct(s.date_right):.0f}%) | {s.with_chrome} ({s.pct(s.with_chrome):.0f}%) "
                f"| {s.extra} | {s.duplicates} |")

    for s in scores:
        rows.append(row(s))
    for cfg in dict.fromkeys(s.config for s in scores):
        part = [s for s in scores if s.config == cfg]
        if len(part) > 1:
            tot = Score("**all**", cfg, *[sum(getattr(s, f) for s in part) for f in
                                          ("expected", "found", "title_right", "date_right",
                                           "with_chrome", "extra", "duplicates")])
            rows.append(row(tot))
    return "\n".join(rows)

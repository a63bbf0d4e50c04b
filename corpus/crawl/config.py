"""Crawl sources declared in one TOML file (corpus/sources.toml by default).

Each ``[sources.NAME]`` table gives start URLs, allowed hosts and path prefixes, CSS
selectors for list and article pages, pagination and limits. ``type = "agency"`` is the
generic department site: a user configures it with selectors only. ``[defaults]`` holds
values every source inherits; ``[rate_limits]`` maps a host to its delay in seconds.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "sources.toml"
USER_AGENT = "km-search-crawler/0.1 (+https://github.com/km-search; Thai KM search indexer)"
TYPES = {"opdc", "thaigov", "agency"}


class SourceError(ValueError):
    pass


@dataclass
class Source:
    name: str
    type: str = "agency"
    start_urls: list[str] = field(default_factory=list)
    allowed_hosts: list[str] = field(default_factory=list)  # default: hosts of start_urls
    allowed_prefixes: list[str] = field(default_factory=lambda: ["/"])
    article_links: str = "a"  # CSS selector, on list pages, for links to articles
    article_pattern: str = ""  # regex an article URL's path must match (optional)
    next_page: str = "a[rel=next], a.next, .pagination a.next"  # CSS for pagination links
    title: str = "h1"
    body: str = "article, .entry-content, .content, main"
    date: str = ".date, time, .entry-date"
    publisher: str = ""  # fixed publisher name; else publisher_selector
    publisher_selector: str = ""
    remove: list[str] = field(default_factory=lambda: [
        "nav", "header", "footer", "aside", "script", "style", "form", "noscript",
        ".share", ".social", ".sharedaddy", ".post-views", ".views", ".breadcrumb"])
    attachments: str = "a[href$='.pdf'], a[href$='.PDF'], a[href$='.docx'], a[href$='.DOCX']"
    max_pages: int = 500  # fetches per run (list + article + attachment pages)
    max_list_pages: int = 50  # pagination depth
    delay: float = 1.0  # seconds between requests to one host
    timeout: float = 20.0
    retries: int = 3
    backoff: float = 1.0  # first retry wait; doubles each time
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = USER_AGENT
    respect_robots: bool = True

    @property
    def hosts(self) -> set[str]:
        hosts = self.allowed_hosts or [urlsplit(u).netloc for u in self.start_urls]
        return {h.lower() for h in hosts}

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.netloc.lower() not in self.hosts:
            return False
        return any(parts.path.startswith(p) for p in self.allowed_prefixes)


@dataclass
class Sources:
    sources: dict[str, Source]
    rate_limits: dict[str, float] = field(default_factory=dict)
    path: Path | None = None

    def delay_for(self, host: str, source: Source) -> float:
        return float(self.rate_limits.get(host.lower(), source.delay))

    def select(self, names: list[str] | None) -> list[Source]:
        if not names:
            return list(self.sources.values())
        unknown = [n for n in names if n not in self.sources]
        if unknown:
            raise SourceError(f"unknown source(s) {unknown}; known: {sorted(self.sources)}")
        return [self.sources[n] for n in names]


def load_sources(path: Path | str | None = None) -> Sources:
    """Read a sources file; unknown keys and missing start URLs are errors."""
    path = Path(path or DEFAULT_PATH)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SourceError(f"cannot read sources file {path}: {e}") from None
    defaults = data.get("defaults", {})
    known = {f.name for f in fields(Source)}
    out: dict[str, Source] = {}
    for name, table in (data.get("sources") or {}).items():
        merged = {**defaults, **table}
        bad = set(merged) - known
        if bad:
            raise SourceError(f"source {name!r}: unknown keys {sorted(bad)}")
        src = Source(name=name, **{k: v for k, v in merged.items() if k != "name"})
        if src.type not in TYPES:
            raise SourceError(f"source {name!r}: type must be one of {sorted(TYPES)}")
        if not src.start_urls:
            raise SourceError(f"source {name!r}: start_urls is empty")
        out[name] = src
    rates = {k.lower(): float(v) for k, v in (data.get("rate_limits") or {}).items()}
    return Sources(out, rates, path)

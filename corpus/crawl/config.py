"""Crawl sources declared in TOML (corpus/sources.toml, plus <home>/sources.toml for sites
added with ``km-search crawl https://…``).

A source needs only ``start_urls``: pages are then classified (article / list / other),
titles, bodies and dates are found with no selectors, sitemaps are read and in-site links
followed up to ``max_depth`` hops. Selectors (``title``, ``body``, ``date``,
``article_links``, ``next_page``) are optional overrides for a site the defaults get wrong;
``remove`` selectors are added to the default chrome list (corpus.crawl.chrome).
``[defaults]`` holds values every source inherits; ``[rate_limits]`` maps a host to its
delay in seconds.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from .urls import canonical

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "sources.toml"
USER_AGENT = "km-search-crawler/0.1 (+https://github.com/km-search; Thai KM search indexer)"
TYPES = {"opdc", "thaigov", "agency"}
NEXT_PAGE = "a[rel=next], a.next, .pagination a.next, li.next a, .pagination-next a"


class SourceError(ValueError):
    pass


@dataclass
class Source:
    name: str
    type: str = "agency"
    start_urls: list[str] = field(default_factory=list)
    allowed_hosts: list[str] = field(default_factory=list)  # default: hosts of start_urls
    allowed_prefixes: list[str] = field(default_factory=lambda: ["/"])
    # optional selectors: empty means "found without configuration"
    article_links: str = ""  # CSS on list pages; when set, start URLs are list pages
    article_pattern: str = ""  # regex an article URL's path must match (optional)
    next_page: str = NEXT_PAGE  # CSS for pagination links (numbered links are followed too)
    title: str = ""
    body: str = ""
    date: str = ""
    publisher: str = ""  # fixed publisher name; else publisher_selector; else og:site_name
    publisher_selector: str = ""
    remove: list[str] = field(default_factory=list)  # added to corpus.crawl.chrome.DEFAULT_REMOVE
    attachments: str = ""  # extra CSS for attachment links (PDF/DOCX links are found anyway)
    sitemaps: bool = True  # read robots.txt Sitemap: lines and /sitemap.xml
    follow_links: bool = True  # follow in-site links found on pages
    max_depth: int = 3  # link hops from a start URL or sitemap entry
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


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SourceError(f"cannot read sources file {path}: {e}") from None


def load_sources(path: Path | str | None = None, extra: Path | str | None = None) -> Sources:
    """Read a sources file (and an optional second one, e.g. the user's ad-hoc sites);
    unknown keys and missing start URLs are errors."""
    path = Path(path or DEFAULT_PATH)
    data = _read(path)
    tables = dict(data.get("sources") or {})
    rates = {k.lower(): float(v) for k, v in (data.get("rate_limits") or {}).items()}
    if extra is not None and Path(extra).exists():
        more = _read(Path(extra))
        for name, table in (more.get("sources") or {}).items():
            tables.setdefault(name, table)
        rates.update({k.lower(): float(v) for k, v in (more.get("rate_limits") or {}).items()})
    defaults = data.get("defaults", {})
    known = {f.name for f in fields(Source)}
    out: dict[str, Source] = {}
    for name, table in tables.items():
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
    return Sources(out, rates, path)


def source_name_for(url: str) -> str:
    """www.example.go.th -> example_go_th: the name an ad-hoc site is saved under."""
    host = urlsplit(url).netloc.lower().split("@")[-1]
    host = re.sub(r"^www\d*\.", "", host)
    return re.sub(r"[^a-z0-9]+", "_", host).strip("_") or "site"


def adhoc_source(url: str) -> Source:
    """The source a bare site URL gets: start there, stay on the host, no selectors."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceError(f"not an http(s) URL: {url!r}")
    return Source(name=source_name_for(url), start_urls=[canonical(url)])


def save_adhoc_source(path: Path | str, src: Source) -> None:
    """Add ``src`` to a user sources file (atomic rewrite), so later runs are incremental."""
    path = Path(path)
    data = _read(path) if path.exists() else {}
    if src.name in (data.get("sources") or {}):
        return
    text = path.read_text(encoding="utf-8") if path.exists() else \
        "# Sites added with `km-search crawl URL`; edit freely (see corpus/sources.toml).\n"
    urls = ", ".join(f'"{u}"' for u in src.start_urls)
    text += f'\n[sources.{src.name}]\ntype = "agency"\nstart_urls = [{urls}]\n'
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)

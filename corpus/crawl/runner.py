"""The crawl runner: `run_crawl(cfg, ["opdc"])` crawls sources into the document store
and (unless index=False) updates the index incrementally; `crawl_status(cfg)` reports.

Also runnable as ``python -m corpus.crawl.runner [SOURCE...] --home H [--sources F]
[--no-index] [--prune] [--every S]`` (for cron/systemd and for the kill tests).
"""
from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit
from pathlib import Path
from typing import Callable

from indexer import update_index
from km_search.docstore import DocumentStore
from km_search.models import Document, content_hash, doc_id_for
from km_search.settings import Config
from km_search.thai.provinces import provinces_in

from .config import (Source, SourceError, Sources, adhoc_source, load_sources, save_adhoc_source,
                     source_name_for)
from .extract import (ExtractError, attachment_filename, decode_html, looks_like_attachment,
                      drop_lines, parse_attachment, parse_list, parse_page, site_title, sniff_type)
from .fetch import Fetcher, FetchError
from .sitemap import parse_sitemap
from .state import CrawlState
from .urls import canonical

Progress = Callable[[str, int, int], None]  # (message, done, total known)
_NOT_PAGES = re.compile(r"\.(?:jpe?g|png|gif|webp|svg|ico|bmp|tiff?|zip|rar|7z|gz|tar|xlsx?|csv|pptx?|"
                        r"doc|mp[34]|m4a|avi|mov|wmv|flv|css|js|json|woff2?|ttf|eot|exe|apk|iso)$", re.I)
MIN_PAGES_FOR_TEMPLATE = 4  # a line on at least this many of a source's pages ...
TEMPLATE_SHARE = 0.5  # ... and on at least this share of them is template, not content


def crawl_db(cfg: Config) -> Path:
    return cfg.home_path / "crawl.db"


@dataclass
class RunReport:
    source: str
    run_id: int
    resumed: bool = False
    fetched: int = 0
    not_modified: int = 0
    added: int = 0
    changed: int = 0
    pruned: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""
    seconds: float = 0.0
    finished: bool = False
    indexed: bool = False

    @property
    def pages_per_s(self) -> float:
        return (self.fetched + self.not_modified) / self.seconds if self.seconds else 0.0


def _after(fetched_at: str | None, lastmod: str | None) -> bool:
    """True when a page fetched at ``fetched_at`` is newer than a sitemap's ``lastmod``."""
    if not fetched_at or not lastmod:
        return False
    try:
        a, b = datetime.fromisoformat(fetched_at), datetime.fromisoformat(lastmod)
    except ValueError:
        return False
    if a.tzinfo is None:
        a = a.replace(tzinfo=timezone.utc)
    if b.tzinfo is None:
        b = b.replace(tzinfo=timezone.utc)
    return a >= b


class _Crawl:
    def __init__(self, src: Source, state: CrawlState, store: DocumentStore, fetcher: Fetcher,
                 max_pages: int | None, progress: Progress | None):
        self.src, self.state, self.store, self.fetcher = src, state, store, fetcher
        self.max_pages = max_pages or src.max_pages
        self.progress = progress
        self.starts = {canonical(u) for u in src.start_urls}
        self.site = state.site_name(src.name)  # the site's name, from its home page's <title>
        self.boilerplate = frozenset(state.boilerplate(src.name))

    def _seeds(self) -> list[tuple[str, str]]:
        """Start URLs (list pages when the source names its article links, else detected)
        and the site's sitemaps (robots.txt Sitemap: lines, else /sitemap.xml)."""
        src = self.src
        kind = "list" if src.article_links else "page"
        seeds = [(canonical(u), kind) for u in src.start_urls]
        if src.sitemaps:
            for host_url in dict.fromkeys(f"{urlsplit(u).scheme}://{urlsplit(u).netloc}/"
                                          for u in src.start_urls):
                listed = self.fetcher.sitemaps(host_url, src)
                for sm in listed or [urljoin(host_url, "/sitemap.xml")]:
                    seeds.append((canonical(sm), "sitemap"))
        return seeds

    def run(self, prune: bool) -> RunReport:
        t0 = time.perf_counter()
        st, src = self.state, self.src
        resuming = st.db.execute("SELECT 1 FROM runs WHERE source=? AND status='running'",
                                 (src.name,)).fetchone()
        run_id, resumed = st.open_run(src.name, [] if resuming else self._seeds())
        rep = RunReport(src.name, run_id, resumed)
        note = ""
        done_here = 0
        while True:
            item = st.next_pending(run_id)
            if item is None:
                break
            if done_here >= self.max_pages:
                left = st.pending_count(run_id)
                note = f"max_pages={self.max_pages} reached; {left} URLs left for the next run"
                st.add_error(run_id, src.name, item["url"], "warning: " + note)
                break
            self._process(run_id, item)
            done_here += 1
            if self.progress:
                self.progress(item["url"], st.processed_count(run_id),
                              st.processed_count(run_id) + st.pending_count(run_id))
        self._strip_repeated_lines()
        if prune and not note and st.list_errors(run_id) == 0:
            rep.pruned = self._prune(run_id)
        elif prune:
            note += ("; " if note else "") + "prune skipped (incomplete run)"
        if note.startswith("max_pages"):
            st.pause_run(run_id, note)  # the next run resumes this frontier
        else:
            st.finish_run(run_id, note)
        c = st.counters(run_id)
        rep.fetched, rep.not_modified = c.get("fetched", 0), c.get("not_modified", 0)
        rep.added, rep.changed = c.get("added", 0), c.get("changed", 0)
        rep.errors = st.errors(run_id)
        rep.warnings = st.errors(run_id, warnings=True)
        rep.note = note
        rep.seconds = time.perf_counter() - t0
        rep.finished = True
        return rep

    def _strip_repeated_lines(self) -> None:
        """Lines on most of a site's pages are its template (table layouts, footers that no
        selector names): drop them from the source's HTML documents and remember them."""
        docs = [d for d in self.store.iter_documents()
                if d.source == self.src.name and "parent_url" not in d.metadata]
        if len(docs) < MIN_PAGES_FOR_TEMPLATE:
            return
        counts: Counter[str] = Counter()
        for d in docs:
            counts.update({ln for ln in d.body.split("\n") if ln.strip()})
        common = {ln for ln, c in counts.items()
                  if c >= max(MIN_PAGES_FOR_TEMPLATE, TEMPLATE_SHARE * len(docs)) and len(ln) <= 200}
        common |= set(self.boilerplate)
        if not common:
            return
        self.state.add_boilerplate(self.src.name, common)
        self.boilerplate = frozenset(common)
        fixed = []
        for d in docs:
            body = drop_lines(d.body, self.boilerplate)
            if body != d.body and body.strip():
                d.body = body
                d.provinces = provinces_in(body)
                d.hash = content_hash(d.title, body)
                fixed.append(d)
        if fixed:
            self.store.upsert(fixed)

    def _prune(self, run_id: int) -> int:
        seen = self.state.seen_doc_ids(run_id)
        mine = [r[0] for r in self.store.db.execute("SELECT doc_id FROM documents WHERE source=?",
                                                    (self.src.name,))]
        return self.store.delete([d for d in mine if d not in seen])

    def _in_scope(self, url: str) -> bool:
        """Sitemaps may sit outside the allowed path prefixes; pages may not."""
        return self.src.allowed(url) or urlsplit(url).netloc.lower() in self.src.hosts

    def _process(self, run_id: int, item) -> None:
        st, src, url, kind = self.state, self.src, item["url"], item["kind"]
        old = st.page(url)
        if old is not None and old["doc_id"] and _after(old["fetched_at"], item["lastmod"]):
            # the sitemap says nothing changed since the last fetch: no request at all
            st.complete(run_id, src.name, item, http_status=304,
                        children=self._children(item, st.page_links(url)),
                        counters={"not_modified": 1, "sitemap_skipped": 1})
            return
        try:
            resp = self.fetcher.fetch(url, src, etag=old["etag"] if old else None,
                                      last_modified=old["last_modified"] if old else None,
                                      scope=self._in_scope if kind == "sitemap" else None)
        except FetchError as e:
            st.complete(run_id, src.name, item, status="error", http_status=e.status, error=str(e),
                        counters={"errors": 1})
            return
        if resp.status in (404, 410):
            if kind == "sitemap":  # most sites have no /sitemap.xml: not an error
                st.complete(run_id, src.name, item, status="gone", http_status=resp.status)
                return
            st.complete(run_id, src.name, item, status="gone", http_status=resp.status,
                        error=f"HTTP {resp.status} (gone)", counters={"errors": 1})
            return
        if resp.not_modified and old is not None:
            if old["error"]:  # unchanged and still broken: say so again
                st.complete(run_id, src.name, item, status="error", http_status=304,
                            error=f"unchanged since it failed: {old['error']}",
                            counters={"not_modified": 1, "errors": 1})
                return
            st.complete(run_id, src.name, item, http_status=304,
                        children=self._children(item, st.page_links(url)),
                        counters={"not_modified": 1})
            return
        if resp.status != 200:
            st.complete(run_id, src.name, item, status="error", http_status=resp.status,
                        error=f"HTTP {resp.status}", counters={"errors": 1})
            return
        page = {"etag": resp.headers.get("etag"), "last_modified": resp.headers.get("last-modified")}
        try:
            doc, links, warnings, page_kind = self._parse(item, resp)
        except ExtractError as e:
            # keep the validators and the reason: an unchanged broken file is not
            # downloaded again, and each re-crawl still reports it
            page.update(error=str(e))
            st.complete(run_id, src.name, item, status="error", http_status=200, page=page,
                        error=str(e), counters={"fetched": 1, "errors": 1})
            return
        for w in warnings:
            st.add_error(run_id, src.name, url, "warning: " + w)
        page.update(links=links, kind=page_kind)
        counters = {"fetched": 1}
        if doc is not None:
            added, changed = self.store.upsert([doc])  # before the URL is marked done
            page.update(hash=doc.hash, doc_id=doc.doc_id)
            counters.update(added=added, changed=changed)
        st.complete(run_id, src.name, item, http_status=200, page=page,
                    children=self._children(item, links), counters=counters)

    def _children(self, item, links) -> list[tuple]:
        """Frontier rows for the links of a page: pagination adds depth, other links hops."""
        out = []
        for url, kind, anchor, *rest in links:
            lastmod = rest[0] if rest else None
            depth, hops = item["depth"], item["hops"]
            if kind in ("list", "next"):
                depth += 1
                if depth > self.src.max_list_pages:
                    self.state.add_error(item["run_id"], self.src.name, url,
                                         f"pagination limit reached (max_list_pages={self.src.max_list_pages})")
                    continue
                kind = "list" if kind == "list" else "page"
            elif kind == "sitemap":
                pass
            elif item["kind"] == "sitemap":
                hops = 0
            else:
                hops += 1
                if kind == "page" and hops > self.src.max_depth:
                    continue
            if kind == "page" and _NOT_PAGES.search(urlsplit(url).path):
                continue  # images, archives, spreadsheets, scripts: never a document here
            if kind == "sitemap":
                if not self._in_scope(url):
                    continue
            elif not self.src.allowed(url):
                continue  # off-site or outside the allowed paths: never fetched
            out.append((url, kind, depth, anchor, hops, lastmod))
        return out

    def _parse(self, item, resp) -> tuple[Document | None, list, list[str], str]:
        """(document or None, links [url, kind, anchor], warnings, page kind)."""
        src, kind = self.src, item["kind"]
        if kind == "sitemap":
            sm = parse_sitemap(decode_html(resp.content, resp.content_type))
            links = [[canonical(u), "sitemap", ""] for u in sm.sitemaps]
            links += [[canonical(u), "page", "", lm] for u, lm in sm.pages]
            return None, links, [], "sitemap"
        ftype = sniff_type(resp.content, resp.content_type, resp.headers.get("content-disposition", ""),
                           resp.url)
        if ftype in ("pdf", "docx"):
            return self._attachment(item, resp, ftype), [], [], "attachment"
        if ftype != "html":
            if kind == "attachment":
                raise ExtractError(f"not a PDF or DOCX ({resp.content_type or 'no content type'})")
            return None, [], [], "other"
        if kind == "attachment":
            raise ExtractError("expected a PDF or DOCX, got an HTML page")
        html = decode_html(resp.content, resp.content_type)
        if kind == "list" and src.article_links:
            arts, nexts, warnings = parse_list(html, resp.url, src)
            links = [[u, "attachment" if looks_like_attachment(u) else "article", a] for u, a in arts]
            links += [[u, "list", ""] for u in nexts]
            return None, links, warnings, "list"
        expect = {"article": "article", "list": "list"}.get(kind, "auto")
        if item["url"] in self.starts or not self.site:
            name = site_title(html)
            if item["url"] in self.starts and name:
                self.site = name
                self.state.set_site_name(src.name, name)
        pg = parse_page(html, resp.url, src, anchor=item["anchor"], expect=expect,
                        site=self.site if item["url"] not in self.starts else "",
                        boilerplate=self.boilerplate)
        links: list[list] = [[u, "attachment", a] for u, a in pg.attachments]
        links += [[u, "next", ""] for u in pg.next_pages]
        if pg.kind == "list" or src.follow_links:
            links += [[u, "page", a] for u, a in pg.links]
        if pg.kind != "article":
            return None, links, pg.warnings, pg.kind
        doc_url = pg.canonical if pg.canonical and src.allowed(pg.canonical) else item["url"]
        doc = Document(doc_id=doc_id_for(doc_url), title=pg.title, body=pg.body, url=doc_url,
                       publisher=pg.publisher, provinces=provinces_in(pg.body),
                       published=pg.published, published_raw=pg.published_raw, source=src.name,
                       metadata={"attachments": [u for u, _ in pg.attachments]})
        return doc, links, pg.warnings, "article"

    def _attachment(self, item, resp, ftype: str) -> Document:
        src, url = self.src, item["url"]
        disposition = resp.headers.get("content-disposition", "")
        att = parse_attachment(resp.content, resp.url, item["anchor"], kind=ftype,
                               filename=attachment_filename(disposition, resp.url))
        parent = self.store.get(doc_id_for(item["parent"])) if item["parent"] else None
        meta = {"parent_url": item["parent"], "content_type": resp.content_type, "file_type": ftype}
        if att.raw_text != att.body:
            meta["raw_text"] = att.raw_text
            meta["thai_repaired"] = att.repaired
        return Document(
            doc_id=doc_id_for(url), title=att.title, body=att.body, url=url,
            publisher=(parent.publisher if parent else "") or src.publisher,
            provinces=provinces_in(att.body),
            published=att.published or (parent.published if parent else None),
            published_raw=att.published_raw or (parent.published_raw if parent else ""),
            source=src.name, metadata=meta)


def user_sources_path(cfg: Config) -> Path:
    """Where sites added with ``km-search crawl URL`` are saved (<home>/sources.toml)."""
    return cfg.home_path / "sources.toml"


def _is_url(name: str) -> bool:
    return name.startswith(("http://", "https://"))


def resolve_sources(cfg: Config, source_names: list[str] | None,
                    sources: Sources | str | Path | None) -> tuple[Sources, list[str] | None]:
    """Load the sources files; a bare site URL among the names becomes an ad-hoc source
    with default settings, saved in the user's sources file for the next (incremental) run."""
    if isinstance(sources, Sources):
        srcs = sources
    else:
        srcs = load_sources(sources, extra=user_sources_path(cfg))
    if not source_names:
        return srcs, None
    names = []
    for n in source_names:
        if not _is_url(n):
            names.append(n)
            continue
        src = adhoc_source(n)
        same = next((s for s in srcs.sources.values()
                     if canonical(n) in [canonical(u) for u in s.start_urls]), None)
        if same is not None:
            names.append(same.name)
            continue
        if src.name in srcs.sources:
            raise SourceError(f"a source named {src.name!r} already exists with other start URLs")
        if not isinstance(sources, Sources):
            save_adhoc_source(user_sources_path(cfg), src)
        srcs.sources[src.name] = src
        names.append(src.name)
    return srcs, names


def run_crawl(cfg: Config, source_names: list[str] | None = None, *,
              sources: Sources | str | Path | None = None, max_pages: int | None = None,
              prune: bool = False, index: bool = True, progress: Progress | None = None,
              embedder=None, fetcher: Fetcher | None = None) -> list[RunReport]:
    """Crawl the named sources (all when None; a site URL makes an ad-hoc source) into the
    store. Each source's documents are indexed as soon as that source finishes."""
    srcs, names = resolve_sources(cfg, source_names, sources)
    selected = srcs.select(names)
    state = CrawlState(crawl_db(cfg))
    own = fetcher is None
    fetcher = fetcher or Fetcher(srcs)
    reports = []
    try:
        for src in selected:
            with DocumentStore(cfg.corpus_db) as store:
                rep = _Crawl(src, state, store, fetcher, max_pages, progress).run(prune)
            reports.append(rep)
            if index and (rep.added or rep.changed or rep.pruned):
                update_index(cfg, embedder=embedder)
                rep.indexed = True
    finally:
        state.close()
        if own:
            fetcher.close()
    return reports


def crawl_status(cfg: Config) -> list[dict]:
    """Per source: last run, its counts, errors, and the documents in the store."""
    if not crawl_db(cfg).exists():
        return []
    state = CrawlState(crawl_db(cfg))
    try:
        rows = state.status()
    finally:
        state.close()
    with DocumentStore(cfg.corpus_db) as store:
        for r in rows:
            r["documents"] = store.db.execute("SELECT COUNT(*) FROM documents WHERE source=?",
                                              (r["source"],)).fetchone()[0]
    return rows


def crawl_report(cfg: Config, source: str, key_path: Path | str) -> str:
    """The answer-key table (corpus.crawl.report) for a source's stored documents."""
    import json

    from .report import score, table

    key = json.loads(Path(key_path).read_text(encoding="utf-8"))
    with DocumentStore(cfg.corpus_db) as store:
        docs = [d for d in store.iter_documents() if d.source == source]
    sc = score(docs, key, site=source, config="stored")
    return table([sc]) + ("\n\n" + "\n".join(sc.misses) if sc.misses else "")


def run_every(cfg: Config, every: float, source_names: list[str] | None = None, *,
              runs: int | None = None, on_run: Callable[[list[RunReport]], None] | None = None,
              **kw) -> None:
    """Re-crawl every ``every`` seconds, forever or ``runs`` times (Ctrl-C to stop)."""
    done = 0
    while runs is None or done < runs:
        t0 = time.monotonic()
        reports = run_crawl(cfg, source_names, **kw)
        done += 1
        if on_run:
            on_run(reports)
        if runs is not None and done >= runs:
            break
        time.sleep(max(0.0, every - (time.monotonic() - t0)))


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    from km_search.settings import load_config

    ap = argparse.ArgumentParser(prog="python -m corpus.crawl.runner")
    ap.add_argument("source", nargs="*")
    ap.add_argument("--home")
    ap.add_argument("--sources")
    ap.add_argument("--max-pages", type=int)
    ap.add_argument("--prune", action="store_true")
    ap.add_argument("--no-index", action="store_true")
    ap.add_argument("--status", action="store_true")
    ap.add_argument("--every", type=float)
    ap.add_argument("--runs", type=int, help="with --every: stop after this many runs")
    a = ap.parse_args(argv)
    cfg = load_config(home=a.home)
    if a.status:
        print(json.dumps(crawl_status(cfg), ensure_ascii=False, indent=1))
        return 0
    kw = dict(sources=a.sources, max_pages=a.max_pages, prune=a.prune, index=not a.no_index)

    def show(reports: list[RunReport]) -> None:
        for r in reports:
            print(json.dumps({"source": r.source, "fetched": r.fetched, "not_modified": r.not_modified,
                              "added": r.added, "changed": r.changed, "pruned": r.pruned,
                              "errors": len(r.errors), "resumed": r.resumed,
                              "pages_per_s": round(r.pages_per_s, 1)}, ensure_ascii=False), flush=True)

    if a.every:
        run_every(cfg, a.every, a.source or None, runs=a.runs, on_run=show, **kw)
        return 0
    show(run_crawl(cfg, a.source or None, **kw))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

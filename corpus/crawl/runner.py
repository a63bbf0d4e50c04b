"""The crawl runner: `run_crawl(cfg, ["opdc"])` crawls sources into the document store
and (unless index=False) updates the index incrementally; `crawl_status(cfg)` reports.

Also runnable as ``python -m corpus.crawl.runner [SOURCE...] --home H [--sources F]
[--no-index] [--prune] [--every S]`` (for cron/systemd and for the kill tests).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from indexer import update_index
from km_search.docstore import DocumentStore
from km_search.models import Document, doc_id_for
from km_search.settings import Config
from km_search.thai.provinces import provinces_in

from .config import Source, Sources, load_sources
from .extract import ExtractError, decode_html, is_attachment, parse_article, parse_attachment, parse_list
from .fetch import Fetcher, FetchError
from .state import CrawlState

Progress = Callable[[str, int, int], None]  # (message, done, total known)


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
    seconds: float = 0.0
    finished: bool = False

    @property
    def pages_per_s(self) -> float:
        return (self.fetched + self.not_modified) / self.seconds if self.seconds else 0.0


class _Crawl:
    def __init__(self, src: Source, state: CrawlState, store: DocumentStore, fetcher: Fetcher,
                 max_pages: int | None, progress: Progress | None):
        self.src, self.state, self.store, self.fetcher = src, state, store, fetcher
        self.max_pages = max_pages or src.max_pages
        self.progress = progress

    def run(self, prune: bool) -> RunReport:
        t0 = time.perf_counter()
        st, src = self.state, self.src
        run_id, resumed = st.open_run(src.name, src.start_urls)
        rep = RunReport(src.name, run_id, resumed)
        note = ""
        while True:
            item = st.next_pending(run_id)
            if item is None:
                break
            if st.processed_count(run_id) >= self.max_pages:
                left = st.pending_count(run_id)
                note = f"max_pages={self.max_pages} reached; {left} URLs not fetched"
                st.add_error(run_id, src.name, item["url"], note)
                break
            self._process(run_id, item)
            if self.progress:
                self.progress(item["url"], st.processed_count(run_id),
                              st.processed_count(run_id) + st.pending_count(run_id))
        if prune and not note and st.list_errors(run_id) == 0:
            rep.pruned = self._prune(run_id)
        elif prune:
            note += "; prune skipped (incomplete run)"
        st.finish_run(run_id, note)
        c = st.counters(run_id)
        rep.fetched, rep.not_modified = c.get("fetched", 0), c.get("not_modified", 0)
        rep.added, rep.changed = c.get("added", 0), c.get("changed", 0)
        rep.errors = st.errors(run_id)
        rep.seconds = time.perf_counter() - t0
        rep.finished = True
        return rep

    def _prune(self, run_id: int) -> int:
        seen = self.state.seen_doc_ids(run_id)
        mine = [r[0] for r in self.store.db.execute("SELECT doc_id FROM documents WHERE source=?",
                                                    (self.src.name,))]
        return self.store.delete([d for d in mine if d not in seen])

    def _process(self, run_id: int, item) -> None:
        st, src, url, kind = self.state, self.src, item["url"], item["kind"]
        old = st.page(url)
        try:
            resp = self.fetcher.fetch(url, src, etag=old["etag"] if old else None,
                                      last_modified=old["last_modified"] if old else None)
        except FetchError as e:
            st.complete(run_id, src.name, item, status="error", http_status=e.status, error=str(e),
                        counters={"errors": 1})
            return
        if resp.status in (404, 410):
            st.complete(run_id, src.name, item, status="gone", http_status=resp.status,
                        error=f"HTTP {resp.status} (gone)", counters={"errors": 1})
            return
        if resp.not_modified and old is not None:
            children = self._children(item, old_links=st.page_links(url))
            st.complete(run_id, src.name, item, http_status=304, children=children,
                        counters={"not_modified": 1})
            return
        if resp.status != 200:
            st.complete(run_id, src.name, item, status="error", http_status=resp.status,
                        error=f"HTTP {resp.status}", counters={"errors": 1})
            return
        page = {"etag": resp.headers.get("etag"), "last_modified": resp.headers.get("last-modified")}
        try:
            if kind == "list":
                arts, nexts = parse_list(decode_html(resp.content, resp.content_type), resp.url, src)
                links = [[u, "attachment" if is_attachment(u) else "article", a] for u, a in arts]
                links += [[u, "list", ""] for u in nexts]
                page["links"] = links
                st.complete(run_id, src.name, item, http_status=200, page=page,
                            children=self._children(item, links), counters={"fetched": 1})
                return
            doc, links = self._document(item, resp)
        except ExtractError as e:
            # keep the validators: an unchanged broken file is not downloaded again
            st.complete(run_id, src.name, item, status="error", http_status=200, page=page,
                        error=str(e), counters={"fetched": 1, "errors": 1})
            return
        added, changed = self.store.upsert([doc])  # before the URL is marked done
        page.update(hash=doc.hash, doc_id=doc.doc_id, links=links)
        st.complete(run_id, src.name, item, http_status=200, page=page,
                    children=self._children(item, links),
                    counters={"fetched": 1, "added": added, "changed": changed})

    def _children(self, item, old_links) -> list[tuple[str, str, int, str]]:
        out = []
        for url, kind, anchor in old_links:
            depth = item["depth"] + 1 if kind == "list" else item["depth"]
            if kind == "list" and depth > self.src.max_list_pages:
                self.state.add_error(item["run_id"], self.src.name, url,
                                     f"pagination limit reached (max_list_pages={self.src.max_list_pages})")
                continue
            if not self.src.allowed(url):
                continue  # off-site or outside the allowed paths: never fetched
            out.append((url, kind, depth, anchor))
        return out

    def _document(self, item, resp) -> tuple[Document, list]:
        src, url = self.src, item["url"]
        if item["kind"] == "attachment" or is_attachment(resp.url):
            att = parse_attachment(resp.content, resp.url, item["anchor"])
            parent = self.store.get(doc_id_for(item["parent"])) if item["parent"] else None
            meta = {"parent_url": item["parent"], "content_type": resp.content_type}
            if att.raw_text != att.body:
                meta["raw_text"] = att.raw_text
                meta["thai_repaired"] = att.repaired
            doc = Document(
                doc_id=doc_id_for(url), title=att.title, body=att.body, url=url,
                publisher=(parent.publisher if parent else "") or src.publisher,
                provinces=provinces_in(att.body),
                published=att.published or (parent.published if parent else None),
                published_raw=att.published_raw or (parent.published_raw if parent else ""),
                source=src.name, metadata=meta)
            return doc, []
        art = parse_article(decode_html(resp.content, resp.content_type), resp.url, src)
        doc = Document(doc_id=doc_id_for(url), title=art.title, body=art.body, url=url,
                       publisher=art.publisher, provinces=provinces_in(art.body),
                       published=art.published, published_raw=art.published_raw, source=src.name,
                       metadata={"attachments": [u for u, _ in art.attachments]})
        return doc, [[u, "attachment", a] for u, a in art.attachments]


def run_crawl(cfg: Config, source_names: list[str] | None = None, *,
              sources: Sources | str | Path | None = None, max_pages: int | None = None,
              prune: bool = False, index: bool = True, progress: Progress | None = None,
              embedder=None, fetcher: Fetcher | None = None) -> list[RunReport]:
    """Crawl the named sources (all when None) into the store; then update the index."""
    srcs = sources if isinstance(sources, Sources) else load_sources(sources)
    selected = srcs.select(source_names)
    state = CrawlState(crawl_db(cfg))
    own = fetcher is None
    fetcher = fetcher or Fetcher(srcs)
    reports = []
    try:
        with DocumentStore(cfg.corpus_db) as store:
            for src in selected:
                reports.append(_Crawl(src, state, store, fetcher, max_pages, progress).run(prune))
    finally:
        state.close()
        if own:
            fetcher.close()
    if index and any(r.added or r.changed or r.pruned for r in reports):
        update_index(cfg, embedder=embedder)
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


def run_every(cfg: Config, every: float, source_names: list[str] | None = None, **kw) -> None:
    """Re-crawl forever, starting a run every ``every`` seconds (Ctrl-C to stop)."""
    while True:
        t0 = time.monotonic()
        run_crawl(cfg, source_names, **kw)
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
    a = ap.parse_args(argv)
    cfg = load_config(home=a.home)
    if a.status:
        print(json.dumps(crawl_status(cfg), ensure_ascii=False, indent=1))
        return 0
    kw = dict(sources=a.sources, max_pages=a.max_pages, prune=a.prune, index=not a.no_index)
    if a.every:
        run_every(cfg, a.every, a.source or None, **kw)
    for r in run_crawl(cfg, a.source or None, **kw):
        print(json.dumps({"source": r.source, "fetched": r.fetched, "not_modified": r.not_modified,
                          "added": r.added, "changed": r.changed, "pruned": r.pruned,
                          "errors": len(r.errors), "resumed": r.resumed,
                          "pages_per_s": round(r.pages_per_s, 1)}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

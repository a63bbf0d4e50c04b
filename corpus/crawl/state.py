"""Crawl state in SQLite (<home>/crawl.db): runs, frontier, fetched pages, errors.

A run's frontier lives in the database, so a crawl killed at any point resumes where it
stopped: the unfinished run is picked up and its pending URLs fetched. A URL is marked
done only after its document is in the document store (the store's upsert is keyed by
URL and content hash), so a kill can cause a re-fetch but never a lost or duplicate
document. Each page row keeps its ETag/Last-Modified for conditional re-fetches and, for
list and article pages, the links found on it (used when the server answers 304).
"""
from __future__ import annotations

import json
import sqlite3

from km_search.sqlite import connect
from pathlib import Path

from km_search.models import utcnow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL DEFAULT 'running',   -- running | done
    note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS frontier (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    url TEXT NOT NULL,
    kind TEXT NOT NULL,                       -- page | list | article | attachment | sitemap
    depth INTEGER NOT NULL DEFAULT 0,         -- pagination depth (list pages)
    hops INTEGER NOT NULL DEFAULT 0,          -- link hops from a start URL or sitemap entry
    lastmod TEXT,                             -- sitemap lastmod, when the URL came from one
    parent TEXT NOT NULL DEFAULT '',
    anchor TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'pending',   -- pending | done | error | gone
    http_status INTEGER,
    UNIQUE (run_id, url)
);
CREATE INDEX IF NOT EXISTS frontier_pending ON frontier(run_id, status, seq);
CREATE TABLE IF NOT EXISTS pages (
    url TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    hash TEXT,
    doc_id TEXT,
    links TEXT NOT NULL DEFAULT '[]',
    fetched_at TEXT NOT NULL,
    error TEXT                                -- why the last fetch made no document
);
CREATE TABLE IF NOT EXISTS errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    url TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sites (
    source TEXT PRIMARY KEY,
    name TEXT NOT NULL                        -- the site's name, never a document title
);
CREATE TABLE IF NOT EXISTS boilerplate (
    source TEXT NOT NULL,
    line TEXT NOT NULL,                       -- a template line found on most of the site's pages
    PRIMARY KEY (source, line)
);
CREATE TABLE IF NOT EXISTS counters (
    run_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, name)
);
"""


_MIGRATIONS = (  # columns added after the first release; crawl.db files from then still open
    ("frontier", "hops", "INTEGER NOT NULL DEFAULT 0"),
    ("frontier", "lastmod", "TEXT"),
    ("pages", "error", "TEXT"),
)
Child = tuple  # (url, kind, depth, anchor[, hops[, lastmod]])


class CrawlState:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.db = connect(self.path, _SCHEMA, synchronous="NORMAL")
        for table, col, decl in _MIGRATIONS:
            have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            if col not in have:
                with self.db:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {col} {decl}")

    def close(self) -> None:
        self.db.close()

    # runs -----------------------------------------------------------------
    def open_run(self, source: str, seeds: list[tuple[str, str]] | list[str]) -> tuple[int, bool]:
        """(run id, resumed): the source's unfinished run, or a new one seeded with
        ``seeds`` ((url, kind) pairs; a bare URL is a list page)."""
        row = self.db.execute("SELECT id FROM runs WHERE source=? AND status='running' "
                              "ORDER BY id DESC LIMIT 1", (source,)).fetchone()
        if row:
            return row["id"], True
        with self.db:
            run_id = self.db.execute("INSERT INTO runs (source, started_at) VALUES (?, ?)",
                                     (source, utcnow())).lastrowid
            for seed in seeds:
                url, kind = (seed, "list") if isinstance(seed, str) else seed
                self.db.execute("INSERT OR IGNORE INTO frontier (run_id, url, kind) VALUES (?, ?, ?)",
                                (run_id, url, kind))
        return run_id, False

    def finish_run(self, run_id: int, note: str = "") -> None:
        with self.db:
            self.db.execute("UPDATE runs SET status='done', finished_at=?, note=? WHERE id=?",
                            (utcnow(), note, run_id))

    def pause_run(self, run_id: int, note: str) -> None:
        """Stop a run early (max_pages) but leave it open: the next run continues it."""
        with self.db:
            self.db.execute("UPDATE runs SET note=? WHERE id=?", (note, run_id))

    def next_pending(self, run_id: int) -> sqlite3.Row | None:
        # sitemaps first: their lastmod lets unchanged pages be skipped without a request
        return self.db.execute("SELECT * FROM frontier WHERE run_id=? AND status='pending' "
                               "ORDER BY kind != 'sitemap', seq LIMIT 1", (run_id,)).fetchone()

    def pending_count(self, run_id: int) -> int:
        return self.db.execute("SELECT COUNT(*) FROM frontier WHERE run_id=? AND status='pending'",
                               (run_id,)).fetchone()[0]

    def processed_count(self, run_id: int) -> int:
        return self.db.execute("SELECT COUNT(*) FROM frontier WHERE run_id=? AND status!='pending'",
                               (run_id,)).fetchone()[0]

    # one transaction per processed URL -------------------------------------
    def complete(self, run_id: int, source: str, item: sqlite3.Row, *, status: str = "done",
                 http_status: int | None = None, page: dict | None = None,
                 children: list[Child] = (), error: str | None = None,
                 counters: dict[str, int] | None = None) -> None:
        """Mark ``item`` processed, record its page row, enqueue children, log an error."""
        with self.db:
            if page is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO pages (url, source, kind, etag, last_modified, hash, doc_id, "
                    "links, fetched_at, error) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (item["url"], source, page.get("kind", item["kind"]), page.get("etag"),
                     page.get("last_modified"), page.get("hash"), page.get("doc_id"),
                     json.dumps(page.get("links", []), ensure_ascii=False), utcnow(),
                     page.get("error")))
            for child in children:
                url, kind, depth, anchor = child[:4]
                hops = child[4] if len(child) > 4 else 0
                lastmod = child[5] if len(child) > 5 else None
                # a URL met again keeps its first row, but gains an anchor text or a sitemap
                # lastmod it did not have (home-page link first, sitemap entry second)
                self.db.execute("INSERT INTO frontier (run_id, url, kind, depth, parent, anchor, hops, "
                                "lastmod) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(run_id, url) DO UPDATE SET "
                                "anchor=CASE WHEN anchor='' THEN excluded.anchor ELSE anchor END, "
                                "lastmod=COALESCE(lastmod, excluded.lastmod)",
                                (run_id, url, kind, depth, item["url"], anchor, hops, lastmod))
            if error:
                self.db.execute("INSERT INTO errors (run_id, source, url, reason, at) VALUES (?,?,?,?,?)",
                                (run_id, source, item["url"], error, utcnow()))
            for name, n in (counters or {}).items():
                self.db.execute("INSERT INTO counters (run_id, name, value) VALUES (?,?,?) "
                                "ON CONFLICT(run_id, name) DO UPDATE SET value=value+excluded.value",
                                (run_id, name, n))
            self.db.execute("UPDATE frontier SET status=?, http_status=? WHERE seq=?",
                            (status, http_status, item["seq"]))

    def add_error(self, run_id: int, source: str, url: str, reason: str) -> None:
        with self.db:
            self.db.execute("INSERT INTO errors (run_id, source, url, reason, at) VALUES (?,?,?,?,?)",
                            (run_id, source, url, reason, utcnow()))

    def set_site_name(self, source: str, name: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO sites (source, name) VALUES (?, ?)", (source, name))

    def boilerplate(self, source: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT line FROM boilerplate WHERE source=?", (source,))}

    def add_boilerplate(self, source: str, lines: set[str]) -> None:
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO boilerplate (source, line) VALUES (?, ?)",
                                [(source, ln) for ln in lines])

    def site_name(self, source: str) -> str:
        row = self.db.execute("SELECT name FROM sites WHERE source=?", (source,)).fetchone()
        return row[0] if row else ""

    # lookups ----------------------------------------------------------------
    def page(self, url: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM pages WHERE url=?", (url,)).fetchone()

    def page_links(self, url: str) -> list:
        row = self.page(url)
        return json.loads(row["links"]) if row else []

    def counters(self, run_id: int) -> dict[str, int]:
        return {r["name"]: r["value"] for r in
                self.db.execute("SELECT name, value FROM counters WHERE run_id=?", (run_id,))}

    def errors(self, run_id: int, warnings: bool = False) -> list[tuple[str, str]]:
        """(url, reason) of a run's errors, or of its warnings (reasons "warning: …")."""
        op = "LIKE" if warnings else "NOT LIKE"
        return [(r["url"], r["reason"]) for r in
                self.db.execute(f"SELECT url, reason FROM errors WHERE run_id=? AND reason {op} "
                                "'warning:%' ORDER BY id", (run_id,))]

    def seen_doc_ids(self, run_id: int) -> set[str]:
        """Doc ids of URLs reached in this run (fetched, unchanged, or failing but not gone)."""
        rows = self.db.execute(
            "SELECT p.doc_id FROM frontier f JOIN pages p ON p.url=f.url "
            "WHERE f.run_id=? AND f.status IN ('done','error') AND p.doc_id IS NOT NULL", (run_id,))
        return {r[0] for r in rows}

    def list_errors(self, run_id: int) -> int:
        return self.db.execute("SELECT COUNT(*) FROM frontier WHERE run_id=? AND kind='list' "
                               "AND status='error'", (run_id,)).fetchone()[0]

    def status(self) -> list[dict]:
        out = []
        for r in self.db.execute("SELECT source, MAX(id) AS id FROM runs GROUP BY source ORDER BY source"):
            run = self.db.execute("SELECT * FROM runs WHERE id=?", (r["id"],)).fetchone()
            last_done = self.db.execute("SELECT finished_at FROM runs WHERE source=? AND status='done' "
                                        "ORDER BY id DESC LIMIT 1", (r["source"],)).fetchone()
            c = self.counters(run["id"])
            out.append({
                "source": r["source"], "run_id": run["id"], "status": run["status"],
                "started_at": run["started_at"], "finished_at": run["finished_at"],
                "last_finished": last_done["finished_at"] if last_done else None,
                "fetched": c.get("fetched", 0), "not_modified": c.get("not_modified", 0),
                "added": c.get("added", 0), "changed": c.get("changed", 0),
                "errors": len(self.errors(run["id"])),
                "error_list": self.errors(run["id"]),
                "warnings": self.errors(run["id"], warnings=True),
                "pending": self.pending_count(run["id"]), "note": run["note"],
            })
        return out

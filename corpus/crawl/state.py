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
    kind TEXT NOT NULL,                       -- list | article | attachment
    depth INTEGER NOT NULL DEFAULT 0,
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
    fetched_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    url TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    run_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, name)
);
"""


class CrawlState:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.db = connect(self.path, _SCHEMA, synchronous="NORMAL")

    def close(self) -> None:
        self.db.close()

    # runs -----------------------------------------------------------------
    def open_run(self, source: str, start_urls: list[str]) -> tuple[int, bool]:
        """(run id, resumed): the source's unfinished run, or a new one seeded with start URLs."""
        row = self.db.execute("SELECT id FROM runs WHERE source=? AND status='running' "
                              "ORDER BY id DESC LIMIT 1", (source,)).fetchone()
        if row:
            return row["id"], True
        with self.db:
            run_id = self.db.execute("INSERT INTO runs (source, started_at) VALUES (?, ?)",
                                     (source, utcnow())).lastrowid
            for u in start_urls:
                self.db.execute("INSERT OR IGNORE INTO frontier (run_id, url, kind) VALUES (?, ?, 'list')",
                                (run_id, u))
        return run_id, False

    def finish_run(self, run_id: int, note: str = "") -> None:
        with self.db:
            self.db.execute("UPDATE runs SET status='done', finished_at=?, note=? WHERE id=?",
                            (utcnow(), note, run_id))

    def next_pending(self, run_id: int) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM frontier WHERE run_id=? AND status='pending' "
                               "ORDER BY seq LIMIT 1", (run_id,)).fetchone()

    def pending_count(self, run_id: int) -> int:
        return self.db.execute("SELECT COUNT(*) FROM frontier WHERE run_id=? AND status='pending'",
                               (run_id,)).fetchone()[0]

    def processed_count(self, run_id: int) -> int:
        return self.db.execute("SELECT COUNT(*) FROM frontier WHERE run_id=? AND status!='pending'",
                               (run_id,)).fetchone()[0]

    # one transaction per processed URL -------------------------------------
    def complete(self, run_id: int, source: str, item: sqlite3.Row, *, status: str = "done",
                 http_status: int | None = None, page: dict | None = None,
                 children: list[tuple[str, str, int, str]] = (), error: str | None = None,
                 counters: dict[str, int] | None = None) -> None:
        """Mark ``item`` processed, record its page row, enqueue children, log an error."""
        with self.db:
            if page is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO pages (url, source, kind, etag, last_modified, hash, doc_id, "
                    "links, fetched_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (item["url"], source, item["kind"], page.get("etag"), page.get("last_modified"),
                     page.get("hash"), page.get("doc_id"),
                     json.dumps(page.get("links", []), ensure_ascii=False), utcnow()))
            for url, kind, depth, anchor in children:
                self.db.execute("INSERT OR IGNORE INTO frontier (run_id, url, kind, depth, parent, anchor) "
                                "VALUES (?,?,?,?,?,?)", (run_id, url, kind, depth, item["url"], anchor))
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

    # lookups ----------------------------------------------------------------
    def page(self, url: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM pages WHERE url=?", (url,)).fetchone()

    def page_links(self, url: str) -> list:
        row = self.page(url)
        return json.loads(row["links"]) if row else []

    def counters(self, run_id: int) -> dict[str, int]:
        return {r["name"]: r["value"] for r in
                self.db.execute("SELECT name, value FROM counters WHERE run_id=?", (run_id,))}

    def errors(self, run_id: int) -> list[tuple[str, str]]:
        return [(r["url"], r["reason"]) for r in
                self.db.execute("SELECT url, reason FROM errors WHERE run_id=? ORDER BY id", (run_id,))]

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
                "errors": self.db.execute("SELECT COUNT(*) FROM errors WHERE run_id=?",
                                          (run["id"],)).fetchone()[0],
                "pending": self.pending_count(run["id"]), "note": run["note"],
            })
        return out

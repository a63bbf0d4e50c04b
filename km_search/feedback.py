"""Thumbs up/down, stored with the query in ``<home>/feedback.db`` (SQLite, WAL).

Exported as relevance judgements (JSON Lines, one per query and document): the same
keys as ``bench/data/seed_questions.jsonl`` (``lang``, ``question``, ``doc_id``) plus
``relevance`` (1 = helpful, 0 = not) and the vote counts, so real users' questions can
become a domain test set for ``km-search eval``.

The file is capped (``feedback_max_mb``): past the cap it is rotated to
``feedback.db.1`` (the previous ``.1`` is dropped) and a new file started, so a flood of
posts costs at most twice the cap on disk. The judgements export reads both files.
"""
from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from km_search.atomic import exclusive_lock
from km_search.models import utcnow
from km_search.sqlite import connect

from km_search.answer import lang_of

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, query TEXT NOT NULL,
    vote INTEGER NOT NULL, target TEXT NOT NULL, doc_id TEXT, chunk_id INTEGER,
    answer TEXT, lang TEXT);
CREATE INDEX IF NOT EXISTS feedback_query ON feedback(query);
"""


class FeedbackStore:
    def __init__(self, path: Path, max_bytes: int | None = None):
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        connect(path, _SCHEMA).close()

    @property
    def rotated(self) -> Path:
        return self.path.with_name(self.path.name + ".1")

    def _size(self) -> int:
        return sum(p.stat().st_size for p in (self.path, self.path.with_name(self.path.name + "-wal"))
                   if p.exists())

    def _rotate_if_full(self) -> None:
        """Called under the lock with no connection open (SQLite has checkpointed the WAL
        into the file when the last connection closed)."""
        if not self.max_bytes or self._size() < self.max_bytes:
            return
        for suffix in ("", "-wal", "-shm"):
            old = self.rotated.with_name(self.rotated.name + suffix)
            old.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        os.replace(self.path, self.rotated)
        connect(self.path, _SCHEMA).close()

    @contextmanager
    def _locked(self):
        """Threads of this process and other worker processes take turns (rotation renames
        the file, which must not happen under another writer's open connection)."""
        with self._lock, exclusive_lock(self.path.with_name(self.path.name + ".lock")):
            yield

    @contextmanager
    def _db(self):
        """A connection per operation: requests run on several threads."""
        with self._locked():
            db = connect(self.path, synchronous="NORMAL")
            try:
                yield db
            finally:
                db.close()

    def add(self, query: str, vote: int, target: str, doc_id: str | None = None,
            chunk_id: int | None = None, answer: str | None = None) -> int:
        with self._db() as db:
            cur = db.execute(
                "INSERT INTO feedback (at, query, vote, target, doc_id, chunk_id, answer, lang) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (utcnow(), query, vote, target, doc_id, chunk_id, answer, lang_of(query)))
            db.commit()
            fid = int(cur.lastrowid)
        with self._locked():
            self._rotate_if_full()
        return fid

    def counts(self) -> dict[str, int]:
        with self._db() as db:
            row = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(vote > 0), 0), COALESCE(SUM(vote < 0), 0), "
                "COUNT(DISTINCT query) FROM feedback").fetchone()
        return {"total": row[0], "up": row[1], "down": row[2], "queries": row[3]}

    def judgements(self) -> Iterator[dict]:
        """One judgement per (query, document) that got a vote on a result or a cited answer."""
        with self._db() as db:
            source = "feedback"
            if self.rotated.exists():  # the rotated file's votes first (older ids)
                db.execute("ATTACH DATABASE ? AS old", (str(self.rotated),))
                source = ("(SELECT 0 AS part, * FROM old.feedback UNION ALL "
                          "SELECT 1 AS part, * FROM main.feedback)")
            else:
                source = "(SELECT 1 AS part, * FROM feedback)"
            rows = db.execute(
                "SELECT query, doc_id, SUM(vote > 0), SUM(vote < 0), MIN(lang), "
                f"GROUP_CONCAT(DISTINCT target) FROM {source} WHERE doc_id IS NOT NULL "
                "GROUP BY query, doc_id ORDER BY MIN(part * 1e15 + id)").fetchall()
        for q, doc, up, down, lang, targets in rows:
            if up == down:
                continue
            yield {"lang": lang, "question": q, "doc_id": doc, "relevance": int(up > down),
                   "up": up, "down": down, "from": sorted(targets.split(","))}

    def judgements_jsonl(self) -> str:
        return "".join(json.dumps(j, ensure_ascii=False) + "\n" for j in self.judgements())

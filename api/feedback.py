"""Thumbs up/down, stored with the query in ``<home>/feedback.db`` (SQLite, WAL).

Exported as relevance judgements (JSON Lines, one per query and document): the same
keys as ``bench/data/seed_questions.jsonl`` (``lang``, ``question``, ``doc_id``) plus
``relevance`` (1 = helpful, 0 = not) and the vote counts, so real users' questions can
become a domain test set for ``km-search eval``.
"""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from km_search.models import utcnow
from km_search.sqlite import connect

from .answer import lang_of

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, query TEXT NOT NULL,
    vote INTEGER NOT NULL, target TEXT NOT NULL, doc_id TEXT, chunk_id INTEGER,
    answer TEXT, lang TEXT);
CREATE INDEX IF NOT EXISTS feedback_query ON feedback(query);
"""


class FeedbackStore:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        connect(path, _SCHEMA).close()

    @contextmanager
    def _db(self):
        """A connection per operation: requests run on several threads."""
        with self._lock:
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
            return int(cur.lastrowid)

    def counts(self) -> dict[str, int]:
        with self._db() as db:
            row = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(vote > 0), 0), COALESCE(SUM(vote < 0), 0), "
                "COUNT(DISTINCT query) FROM feedback").fetchone()
        return {"total": row[0], "up": row[1], "down": row[2], "queries": row[3]}

    def judgements(self) -> Iterator[dict]:
        """One judgement per (query, document) that got a vote on a result or a cited answer."""
        with self._db() as db:
            rows = db.execute(
                "SELECT query, doc_id, SUM(vote > 0), SUM(vote < 0), MIN(lang), "
                "GROUP_CONCAT(DISTINCT target) FROM feedback WHERE doc_id IS NOT NULL "
                "GROUP BY query, doc_id ORDER BY MIN(id)").fetchall()
        for q, doc, up, down, lang, targets in rows:
            if up == down:
                continue
            yield {"lang": lang, "question": q, "doc_id": doc, "relevance": int(up > down),
                   "up": up, "down": down, "from": sorted(targets.split(","))}

    def judgements_jsonl(self) -> str:
        return "".join(json.dumps(j, ensure_ascii=False) + "\n" for j in self.judgements())

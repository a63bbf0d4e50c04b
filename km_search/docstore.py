"""SQLite document store (corpus.db): where sources (corpus/) put documents and the
indexer and lessons read them.

One row per document, keyed by its stable id. Writes go through transactions, so a
crash mid-import leaves either the old or the new row, never half of one. The store
knows each document's content hash, which is what incremental indexing compares.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Iterable, Iterator

from km_search.models import Document, utcnow
from km_search.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    url TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    publisher TEXT NOT NULL DEFAULT '',
    provinces TEXT NOT NULL DEFAULT '[]',
    published TEXT,
    published_raw TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    fetched_at TEXT NOT NULL,
    hash TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
"""
_COLS = ["doc_id", "url", "title", "body", "publisher", "provinces", "published",
         "published_raw", "source", "fetched_at", "hash", "metadata"]


def _row_to_doc(row: sqlite3.Row) -> Document:
    d = {k: row[k] for k in _COLS}
    d["provinces"] = json.loads(d["provinces"])
    d["metadata"] = json.loads(d["metadata"])
    return Document(**d)


class DocumentStore:
    """Documents in one SQLite file; safe to open from several processes (WAL)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.db = connect(self.path, _SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "DocumentStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def upsert(self, docs: Iterable[Document]) -> tuple[int, int]:
        """Insert or replace documents; returns (added, changed). Unchanged rows are kept."""
        added = changed = 0
        with self.db:
            for doc in docs:
                old = self.db.execute("SELECT hash FROM documents WHERE doc_id=?", (doc.doc_id,)).fetchone()
                if old is not None and old["hash"] == doc.hash:
                    continue
                vals = [getattr(doc, c) for c in _COLS]
                vals[_COLS.index("provinces")] = json.dumps(doc.provinces, ensure_ascii=False)
                vals[_COLS.index("metadata")] = json.dumps(doc.metadata, ensure_ascii=False)
                self.db.execute(
                    f"INSERT OR REPLACE INTO documents ({','.join(_COLS)}, updated_at) "
                    f"VALUES ({','.join('?' * len(_COLS))}, ?)", vals + [utcnow()])
                if old is None:
                    added += 1
                else:
                    changed += 1
        return added, changed

    def delete(self, doc_ids: Iterable[str]) -> int:
        with self.db:
            return sum(self.db.execute("DELETE FROM documents WHERE doc_id=?", (d,)).rowcount
                       for d in doc_ids)

    def get(self, doc_id: str) -> Document | None:
        row = self.db.execute("SELECT * FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return _row_to_doc(row) if row else None

    def iter_documents(self) -> Iterator[Document]:
        for row in self.db.execute("SELECT * FROM documents ORDER BY doc_id"):
            yield _row_to_doc(row)

    def hashes(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.db.execute("SELECT doc_id, hash FROM documents")}

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]

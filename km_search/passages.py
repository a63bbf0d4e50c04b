"""passages.db: the passage table that every other index file refers to by pid."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from km_search.models import Chunk, Document
from km_search.retrieval.filters import Filter, published_int

SEP = "\x1f"  # token separator in the stored token string
SCHEMA = """
CREATE TABLE IF NOT EXISTS passages (
    pid INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL,
    title TEXT NOT NULL, text TEXT NOT NULL, tokens TEXT NOT NULL,
    start INTEGER NOT NULL, end INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS passages_doc ON passages(doc_id);
CREATE TABLE IF NOT EXISTS docs (
    doc_id TEXT PRIMARY KEY, hash TEXT NOT NULL, url TEXT, title TEXT, publisher TEXT,
    published TEXT, published_raw TEXT, provinces TEXT, source TEXT);
CREATE TABLE IF NOT EXISTS passage_facets (pid INTEGER PRIMARY KEY, facets TEXT NOT NULL);
"""


def open_db(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        db = sqlite3.connect(path)
        db.executescript(SCHEMA)
    db.row_factory = sqlite3.Row
    return db


def remove_docs(db: sqlite3.Connection, doc_ids: Iterable[str]) -> list[int]:
    pids: list[int] = []
    for d in doc_ids:
        pids += [r[0] for r in db.execute("SELECT pid FROM passages WHERE doc_id=?", (d,))]
        db.execute("DELETE FROM passage_facets WHERE pid IN (SELECT pid FROM passages WHERE doc_id=?)",
                   (d,))
        db.execute("DELETE FROM passages WHERE doc_id=?", (d,))
        db.execute("DELETE FROM docs WHERE doc_id=?", (d,))
    return pids


def add_doc(db: sqlite3.Connection, doc: Document, chunks: list[Chunk],
            tokens: list[list[str]], first_pid: int,
            facets: list[dict[str, list]] | None = None) -> list[int]:
    """Store a document's passages (with their tokens and their text facets, computed
    here unless ``facets`` gives them, one per chunk); returns their pids."""
    if facets is None:
        from km_search.lessons.facets import text_facets  # lessons imports search: late

        facets = [text_facets(c.title, c.text) for c in chunks]
    db.execute("INSERT OR REPLACE INTO docs VALUES (?,?,?,?,?,?,?,?,?)",
               (doc.doc_id, doc.hash, doc.url, doc.title, doc.publisher, doc.published,
                doc.published_raw, json.dumps(doc.provinces, ensure_ascii=False), doc.source))
    pids = list(range(first_pid, first_pid + len(chunks)))
    db.executemany("INSERT INTO passages VALUES (?,?,?,?,?,?,?,?)",
                   [(p, c.doc_id, c.ordinal, c.title, c.text, SEP.join(t), c.start, c.end)
                    for p, c, t in zip(pids, chunks, tokens)])
    db.executemany("INSERT OR REPLACE INTO passage_facets VALUES (?,?)",
                   [(p, json.dumps(f, ensure_ascii=False)) for p, f in zip(pids, facets)])
    return pids


def stored_facets(db: sqlite3.Connection, pids: list[int]) -> dict[int, dict[str, list]]:
    """The text facets stored for ``pids`` (absent: passages of a build made before they
    were stored, which callers facet from the text)."""
    if not pids:
        return {}
    try:
        rows = db.execute(f"SELECT pid, facets FROM passage_facets WHERE pid IN "
                          f"({','.join('?' * len(pids))})", pids)
        return {pid: json.loads(f) for pid, f in rows}
    except sqlite3.OperationalError:  # no such table: an older build, opened read-only
        return {}


@dataclass(frozen=True)
class PassageSpan:
    """Where one passage of a document lies in the document's text (for anchors)."""

    pid: int
    ordinal: int
    start: int
    end: int


def doc_spans(db: sqlite3.Connection, doc_id: str) -> list[PassageSpan]:
    """The passages of one document, in reading order."""
    return [PassageSpan(*r) for r in db.execute(
        "SELECT pid, ordinal, start, end FROM passages WHERE doc_id=? ORDER BY ordinal", (doc_id,))]


def next_pid(db: sqlite3.Connection) -> int:
    return (db.execute("SELECT MAX(pid) FROM passages").fetchone()[0] or 0) + 1


def all_tokens(db: sqlite3.Connection) -> tuple[list[int], Iterator[list[str]]]:
    """Every passage's pid (a list) and tokens (a generator in the same order, one
    passage at a time): a BM25 build streams them instead of holding 1M token lists.
    Read the generator to its end before writing to ``db``."""
    pids = [r[0] for r in db.execute("SELECT pid FROM passages ORDER BY pid")]

    def tokens() -> Iterator[list[str]]:
        for (t,) in db.execute("SELECT tokens FROM passages ORDER BY pid"):
            yield t.split(SEP) if t else []
    return pids, tokens()


def resolver(db: sqlite3.Connection) -> Callable[[Filter], np.ndarray]:
    """Filter -> allowed pids, for engines that cannot filter (bm25s, FAISS). Cached, so
    the two retrievers of one hybrid query run the SQL once."""
    @lru_cache(maxsize=32)
    def allowed(where: Filter) -> np.ndarray:
        clause, args = where.to_sql()
        q = f"SELECT p.pid FROM passages p JOIN docs d ON d.doc_id = p.doc_id WHERE {clause}"
        return np.asarray([r[0] for r in db.execute(q, args)], dtype=np.int64)
    return allowed


def scalar_fields(db: sqlite3.Connection, pids: list[int]) -> list[dict[str, Any]]:
    """Per passage, the document fields a filtering engine stores beside the vectors
    (the fields of km_search.retrieval.filters), in the order of ``pids``."""
    rows: dict[int, dict[str, Any]] = {}
    for s in range(0, len(pids), 500):
        part = pids[s:s + 500]
        for r in db.execute(
                "SELECT p.pid, p.doc_id, d.published, d.publisher, d.provinces, d.source FROM "
                f"passages p JOIN docs d ON d.doc_id = p.doc_id WHERE p.pid IN ({','.join('?' * len(part))})",
                part):
            rows[r[0]] = {"doc_id": r[1], "published": published_int(r[2]),
                          "publisher": r[3] or "", "provinces": json.loads(r[4] or "[]"),
                          "source": r[5] or ""}
    return [rows[p] for p in pids]

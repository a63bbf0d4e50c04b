"""Opening the project's SQLite files the same way everywhere.

WAL lets a server read while an indexer or crawler writes; the 30 s timeout makes a
second writer wait instead of failing at once.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path | str, schema: str = "", *, synchronous: str = "FULL") -> sqlite3.Connection:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    if schema:
        db.executescript(schema)
    return db

"""Persistent embedding cache: (model fingerprint, text hash) -> vector.

CPU encoding is slow (a few passages/s), so every vector is written as soon as its
batch is done. A killed index run then resumes where it stopped, and rebuilds,
incremental updates and evaluation re-runs never embed the same text twice.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from km_search.sqlite import connect

from .base import Embedder


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    def __init__(self, path: Path | str):
        self.db = connect(path, "CREATE TABLE IF NOT EXISTS vectors (model TEXT, key TEXT, "
                                "vec BLOB, PRIMARY KEY (model, key));", synchronous="NORMAL")

    def close(self) -> None:
        self.db.close()

    def lookup(self, model: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors of ``texts`` for ``model`` (a fingerprint), by text key."""
        keys = list(dict.fromkeys(_key(t) for t in texts))
        found: dict[str, np.ndarray] = {}
        for s in range(0, len(keys), 500):
            part = keys[s:s + 500]
            q = f"SELECT key, vec FROM vectors WHERE model=? AND key IN ({','.join('?' * len(part))})"
            for k, blob in self.db.execute(q, [model, *part]):
                found[k] = np.frombuffer(blob, dtype=np.float32)
        return found

    def missing(self, model: str, texts: Sequence[str]) -> list[str]:
        """The distinct texts that have no cached vector for ``model``."""
        found = self.lookup(model, texts)
        return [t for t in dict.fromkeys(texts) if _key(t) not in found]

    def cached(self, model: str, texts: Sequence[str],
               compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Vectors of ``texts`` under the key ``model``; only misses go to ``compute``
        (query vectors, word vectors: anything keyed by text under its own model key)."""
        found = self.lookup(model, texts)
        todo = [t for t in dict.fromkeys(texts) if _key(t) not in found]
        if todo:
            vecs = compute(todo)
            self.put(model, todo, vecs)
            found.update({_key(t): v for t, v in zip(todo, vecs)})
        return np.stack([found[_key(t)] for t in texts])

    def put(self, model: str, texts: Sequence[str], vecs: np.ndarray) -> None:
        """Store vectors computed elsewhere (e.g. by Ray workers); one transaction."""
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?,?,?)",
                                [(model, _key(t), np.asarray(v, np.float32).tobytes())
                                 for t, v in zip(texts, vecs)])

    def encode(self, emb: Embedder, texts: Sequence[str], *, chunk: int = 64,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Passage vectors for ``texts``; only cache misses are embedded."""
        found = self.lookup(emb.fingerprint, texts)
        if progress and found:
            progress(sum(1 for t in texts if _key(t) in found))
        todo = [t for t in dict.fromkeys(texts) if _key(t) not in found]
        for s in range(0, len(todo), chunk):
            part = todo[s:s + chunk]
            vecs = emb.encode_passages(part, progress=progress)
            self.put(emb.fingerprint, part, vecs)
            for t, v in zip(part, vecs):
                found[_key(t)] = v
        out = np.zeros((len(texts), emb.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i] = found[_key(t)]
        return out

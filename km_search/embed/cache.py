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

    def encode(self, emb: Embedder, texts: Sequence[str], *, chunk: int = 64,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Passage vectors for ``texts``; only cache misses are embedded."""
        keys = [_key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        for s in range(0, len(keys), 500):
            part = keys[s:s + 500]
            q = f"SELECT key, vec FROM vectors WHERE model=? AND key IN ({','.join('?' * len(part))})"
            for k, blob in self.db.execute(q, [emb.fingerprint, *part]):
                found[k] = np.frombuffer(blob, dtype=np.float32)
        if progress and found:
            progress(sum(1 for k in keys if k in found))
        todo = list(dict.fromkeys(i for i, k in enumerate(keys) if k not in found))
        seen: set[str] = set()
        todo = [i for i in todo if not (keys[i] in seen or seen.add(keys[i]))]
        for s in range(0, len(todo), chunk):
            idx = todo[s:s + chunk]
            vecs = emb.encode_passages([texts[i] for i in idx], progress=progress)
            with self.db:
                self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?,?,?)",
                                    [(emb.fingerprint, keys[i], v.astype(np.float32).tobytes())
                                     for i, v in zip(idx, vecs)])
            for i, v in zip(idx, vecs):
                found[keys[i]] = v
        out = np.zeros((len(texts), emb.dim), dtype=np.float32)
        for i, k in enumerate(keys):
            out[i] = found[k]
        return out

"""The embedder interface, and the helpers every backend shares (prefixes, sorted batches).

Backends (fake, onnx, sentence_transformers, static) import this module; the factory in
registry.py imports them. Nothing here imports a backend, so there is no cycle.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

# e5-family models were trained with these prefixes; bge-m3 and most others use none.
_PREFIXES = [("e5", ("query: ", "passage: ")), ("bge-m3", ("", "")), ("bge", ("", ""))]


def prefixes_for(name: str) -> tuple[str, str]:
    low = name.lower()
    for key, pref in _PREFIXES:
        if key in low:
            return pref
    return ("", "")


def encode_sorted(texts: Sequence[str], batch_size: int, dim: int,
                  encode_batch: Callable[[list[str]], np.ndarray],
                  progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Encode in length-sorted batches (less padding: ~1.5-2x faster on mixed lengths),
    returning vectors in the input order."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for s in range(0, len(texts), batch_size):
        idx = order[s:s + batch_size]
        out[idx] = encode_batch([texts[i] for i in idx])
        if progress:
            progress(len(idx))
    return out


class Embedder:
    """Turns queries and passages into L2-normalised float32 vectors."""

    name: str
    dim: int
    fingerprint: str  # changes whenever the vectors would change

    @property
    def query_fingerprint(self) -> str:
        """Identifies the query vectors (caches key on it); differs from ``fingerprint``
        only where queries have an encoder of their own (embed/student.py)."""
        return self.fingerprint

    @property
    def full(self) -> "Embedder":
        """This embedder with the full model for queries too: jobs off the request path
        whose vectors are stored or compared with stored ones (sentence roles, the lexicon)
        must not get a query student's."""
        return self

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def encode_passages(self, texts: Sequence[str],
                        progress: Callable[[int], None] | None = None) -> np.ndarray:
        raise NotImplementedError

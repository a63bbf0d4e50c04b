"""A deterministic, model-free embedder for the fast test tier and for trying the pipeline.

Why: the real default model costs seconds to load and ~10 passages/s to run on a 2-core
CPU, so a test that only checks index files, swaps, filters or HTTP validation spent most
of its time embedding. ``KM_SEARCH_MODEL=fake`` gives vectors in microseconds that still
behave like a (lexical) retriever: a text's vector is the normalised sum of hashed
features, its Thai/English word tokens (from the same tokenizer BM25 uses) and the
character trigrams of each token, so texts that share words or word pieces are close and
the same text always gets the same vector in every process (blake2b, not Python's salted
``hash``). It is no substitute for e5 in quality figures; nothing outside tests and
demos should use it.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import numpy as np

from km_search.thai import tokenize

from .base import Embedder

FAKE_DIM = 256
_VERSION = "1"  # bump whenever the vectors would change


def _bucket(feature: str, dim: int) -> tuple[int, float]:
    """Bucket and sign of one feature (the sign halves collisions' bias)."""
    h = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    v = int.from_bytes(h, "little")
    return v % dim, 1.0 if (v >> 63) else -1.0


class HashEmbedder(Embedder):
    """Hashed word + character-trigram features, L2-normalised (no model, no download)."""

    def __init__(self, dim: int = FAKE_DIM):
        self.dim = dim
        self.name = f"fake-hash-{dim}"
        self.fingerprint = f"fake-hash-v{_VERSION}-{dim}"

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for tok in tokenize(text):
            i, s = _bucket("w:" + tok, self.dim)
            v[i] += 2.0 * s
            padded = f"<{tok}>"
            for j in range(max(1, len(padded) - 2)):
                i, s = _bucket("c:" + padded[j:j + 3], self.dim)
                v[i] += s
        n = float(np.linalg.norm(v))
        if n == 0.0:  # empty text: a fixed unit vector keeps every vector normalised
            v[0], n = 1.0, 1.0
        return v / n

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([self._vector(t) for t in texts])

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_passages(self, texts: Sequence[str],
                        progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = self._encode(texts)
        if progress:
            progress(len(texts))
        return out

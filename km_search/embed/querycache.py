"""An in-memory LRU of query vectors, per server process.

A query's embedding is most of a search's CPU on a CPU host (~11-20 ms for a short
question on this 2-core machine, against ~5 ms for BM25, dense search, snippets and
JSON together), and real query streams repeat: popular questions, the page's example
chips, paging and filter changes on the same words, a /chat and the /search behind it.
Vectors are a pure function of (model fingerprint, text) -- the int8 runtime embeds
one text per run for exactly that reason -- so a hit returns the very vector a miss
would compute, and results do not depend on the cache. Memory: 1.5 KB per entry
(384 float32), 6 MB at the default 4,096 entries.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

import numpy as np


class QueryVectorCache:
    """Least-recently-used (fingerprint, query) -> vector; thread-safe; size 0 = off."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, fingerprint: str, query: str,
            compute: Callable[[str], np.ndarray]) -> np.ndarray:
        """The cached vector of ``query``, or ``compute(query)`` stored for next time.
        The computation runs outside the lock, so concurrent misses embed in parallel."""
        if self.size <= 0:
            return compute(query)
        key = (fingerprint, query)
        with self._lock:
            vec = self._items.get(key)
            if vec is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return vec
            self.misses += 1
        vec = np.asarray(compute(query), np.float32)
        vec.setflags(write=False)  # shared between requests: nobody may edit it in place
        with self._lock:
            self._items[key] = vec
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return vec

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"size": len(self._items), "capacity": self.size,
                    "hits": self.hits, "misses": self.misses}

"""The retrieval-backend interface: a lexical index and a vector index, chosen by a setting.

Why: search, the indexer, lessons/similar and the benchmark used to call FAISS and bm25s
directly, so no other engine could serve the same product. Everything above this module
now talks to two small protocols (modelled on txtai's ANN/scoring split):

* :class:`LexicalIndex`: BM25 over *our* Thai tokens (the segmentation stays in
  km_search.thai, identical at index and query time),
* :class:`VectorIndex`: inner-product search over L2-normalised passage vectors,

each keyed by passage id (pid, the row id in passages.db) and filtered by a
backend-neutral :class:`~km_search.retrieval.filters.Filter`. Fusion
(km_search.retrieval.fusion) stays above the backends, so every backend is fused alike.

Backends are registered by name; ``KM_SEARCH_BACKEND`` picks one: ``local`` (the default:
bm25s + FAISS files inside the build folder) or ``milvus`` (pymilvus: Milvus Lite in the
build folder, or a Milvus server at ``KM_SEARCH_MILVUS_URI``). A new backend is a module
with a ``BACKEND = Backend(...)`` and one line in :data:`REGISTRY`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from km_search.settings import Config

from .filters import Filter

#: (ids, scores), best first: what every search returns.
Ranked = tuple[np.ndarray, np.ndarray]
#: Resolves a filter to the allowed passage ids, for engines that cannot evaluate filters
#: themselves (bm25s, FAISS); backed by passages.db.
Resolver = Callable[[Filter], np.ndarray]
#: Per-passage scalar fields an engine with its own filtering stores beside the vectors.
Fields = Sequence[dict[str, Any]]

EMPTY: Ranked = (np.zeros(0, np.int64), np.zeros(0, np.float32))


def tie_order(r: Ranked) -> Ranked:
    """Best first, equal scores by pid, highest (the most recently added passage) first:
    engines order exact ties as they like (FAISS and Milvus differ), and iapp-wiki-qa
    alone has passages that are the same text under two documents, so without one rule
    the backend, not the query, decides which is R@1. Highest first is what FAISS's flat
    search already did, so the default backend's results do not change."""
    ids, scores = r
    if len(ids) < 2:
        return r
    order = np.lexsort((-ids, -scores))
    return ids[order], scores[order]


class LexicalIndex(Protocol):
    def search(self, tokens: list[str], k: int, where: Filter | None = None) -> Ranked:
        """Top-k pids by BM25 for one tokenised query."""

    def coverage(self, tokens: list[str], ids: np.ndarray) -> np.ndarray:
        """Per passage in ``ids``: the share of the query's idf mass it contains (words
        the corpus lacks count at full idf); adaptive fusion weighs BM25 by it. Optional:
        a backend without it counts as 1 (both built-in backends have it: milvus keeps
        the document frequencies beside its vocabulary)."""

    def count(self) -> int: ...

    def save(self, folder: Path) -> None:
        """Write what :meth:`Backend.load_lexical` reads back (a no-op for servers)."""


class VectorIndex(Protocol):
    dim: int

    def add(self, ids: np.ndarray, vectors: np.ndarray, fields: Fields | None = None) -> None: ...

    def delete(self, ids: np.ndarray) -> None: ...

    def search(self, query: np.ndarray, k: int, where: Filter | None = None) -> Ranked:
        """Top-k pids by inner product (cosine: vectors are normalised)."""

    def count(self) -> int: ...

    def reconstruct(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of ``ids`` (for similar documents; nothing is re-embedded)."""

    def save(self, folder: Path) -> None: ...

    def describe(self) -> dict[str, Any]:
        """What the manifest records about this index (kind, size, where it lives)."""


@dataclass(frozen=True)
class Backend:
    """One engine pair and how to make, open and update its indexes inside a build folder.

    ``incremental``: an update may open the live build's vector index, delete and add,
    and save it into the new build (FAISS). Otherwise the indexer creates a fresh vector
    index and adds every passage's (cached) vector (Milvus: one collection per build).
    """

    name: str
    build_lexical: Callable[[Path, Config, Sequence[int], Sequence[list[str]], Fields | None],
                            LexicalIndex]
    new_vectors: Callable[[Path, Config, int, int, np.ndarray | None], VectorIndex]
    load_lexical: Callable[[Path, Config, dict, Resolver], LexicalIndex]
    #: ``readonly=True`` (a server): the index will only be searched, so it may be
    #: memory-mapped and shared between processes; the indexer loads it to edit it
    load_vectors: Callable[..., VectorIndex]
    incremental: bool = False
    #: the engine evaluates filters itself: the indexer passes per-passage scalar fields
    filters_natively: bool = False
    #: called once a build's indexes are saved, before it is published, with every build
    #: folder of the home: close files, drop server-side data of builds that are gone
    finish: Callable[[Path, Config, list[Path]], None] | None = None


#: name -> module defining ``BACKEND``; imported on first use (pymilvus only if chosen).
REGISTRY = {"local": "km_search.retrieval.local", "milvus": "km_search.retrieval.milvus"}


def get_backend(name: str) -> Backend:
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name]).BACKEND


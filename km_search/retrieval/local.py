"""The default ("local") backend: bm25s + FAISS files inside the build folder.

Neither engine evaluates filters, so a filter is resolved to the allowed pids through
passages.db (the :data:`~km_search.retrieval.backend.Resolver` the Searcher passes in)
and handed to the engine as a mask (BM25) or an id selector (FAISS).
"""
from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import faiss
import numpy as np

from km_search import indexdir
from km_search.settings import Config

from . import dense
from .backend import EMPTY, Backend, Fields, Ranked, Resolver
from .bm25 import BM25Index
from .filters import Filter


class Bm25sLexical:
    """BM25 (Lucene variant) over stored Thai tokens; rebuilt whole on every index update
    (cheap: the tokens are stored, nothing is re-tokenised)."""

    def __init__(self, index: BM25Index, resolve: Resolver | None = None,
                 ngram_weight: float = 1.0):
        self.index, self._resolve, self.ngram_weight = index, resolve, ngram_weight
        # a query naming a province filters by it, so filters recur: keep the last masks
        self._mask = lru_cache(maxsize=32)(
            lambda where: _pid_mask(index.pids, _resolve(resolve, where)))

    def search(self, tokens: list[str], k: int, where: Filter | None = None) -> Ranked:
        mask = None
        if where:
            mask = self._mask(where)
        return self.index.search(tokens, k, mask, self.ngram_weight)

    def coverage(self, tokens: list[str], ids: np.ndarray) -> np.ndarray:
        return self.index.coverage(tokens, ids, self.ngram_weight)

    def count(self) -> int:
        return len(self.index)

    def save(self, folder: Path) -> None:
        self.index.save(folder / indexdir.BM25)


class FaissVectors:
    """Exact inner product (IDMap2 over a flat index) up to ``flat_limit``, IVF-SQ8 beyond
    (see km_search.retrieval.dense)."""

    def __init__(self, index, resolve: Resolver | None = None):
        self.index, self._resolve = index, resolve
        self.dim = int(index.d)
        self._map_lock = threading.Lock()
        self._selector = lru_cache(maxsize=32)(  # per recurring filter, as the BM25 masks
            lambda where: _selector(_resolve(resolve, where)))

    def add(self, ids: np.ndarray, vectors: np.ndarray, fields: Fields | None = None) -> None:
        if len(ids):
            self.index.add_with_ids(np.asarray(vectors, np.float32), np.asarray(ids, np.int64))

    def delete(self, ids: np.ndarray) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, query: np.ndarray, k: int, where: Filter | None = None) -> Ranked:
        if not where:
            return dense.search(self.index, query, k)
        allowed, sel = self._selector(where)
        if not len(allowed):
            return EMPTY
        return dense.search(self.index, query, k, allowed, sel)

    def count(self) -> int:
        return int(self.index.ntotal)

    def reconstruct(self, ids: Sequence[int]) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        if dense.kind(self.index) != "flat":
            # IVF reconstructs by id only through a direct map: made once, under a lock
            # (searches do not read it; a build never calls this, as remove_ids refuses it).
            # A hash table: the array kind needs ids 0..n-1 and pids start at 1.
            with self._map_lock:
                ivf = faiss.extract_index_ivf(self.index)
                if ivf.direct_map.type == faiss.DirectMap.NoMap:
                    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        return np.vstack([self.index.reconstruct(int(p)) for p in ids])

    def save(self, folder: Path) -> None:
        faiss.write_index(self.index, str(folder / indexdir.VECTORS))

    def describe(self) -> dict:
        return {"kind": dense.kind(self.index), "ntotal": self.count()}


#: per index kind, the flag that maps its vectors: IVF's inverted lists, or the codes of
#: a flat index (IndexFlatCodes); the two flags do not combine
_MMAP_FLAG = {"ivf-sq8": faiss.IO_FLAG_MMAP, "flat": getattr(faiss, "IO_FLAG_MMAP_IFC", 0)}


def _pid_mask(pids: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Which of ``pids`` are ``allowed``, via a table indexed by pid: ~2 ms at 1M passages
    where ``np.isin`` sorted both arrays (11 ms for a one-province filter)."""
    top = int(max(pids.max(initial=0), allowed.max(initial=0))) + 1
    table = np.zeros(top, bool)
    table[allowed] = True
    mask = table[pids]
    mask.setflags(write=False)  # shared by the searches that repeat this filter
    return mask


def _no_prefetch(index) -> None:
    """Mapped IVF lists (OnDiskInvertedLists) start 32 prefetch threads for the lists of
    every query by default; their pages are in the page cache anyway, so that was thread
    churn: at 1M (nprobe 128) a search took 15 ms mapped against 10 ms read into memory,
    and 9.6 ms mapped with no prefetch threads."""
    if dense.kind(index) == "flat":
        return
    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
    if isinstance(lists, faiss.OnDiskInvertedLists):
        lists.prefetch_nthread = 0


def _selector(allowed: np.ndarray) -> tuple[np.ndarray, object]:
    return allowed, (dense.selector(allowed) if len(allowed) else None)


def _resolve(resolve: Resolver | None, where: Filter) -> np.ndarray:
    if resolve is None:
        raise ValueError("this index was opened without a filter resolver (passages.db)")
    return resolve(where)


def _build_lexical(folder: Path, cfg: Config, ids: Sequence[int], tokens: Sequence[list[str]],
                   fields: Fields | None = None) -> Bm25sLexical:
    return Bm25sLexical(BM25Index.build(tokens, ids))


def _new_vectors(folder: Path, cfg: Config, dim: int, n_expected: int,
                 train: np.ndarray | None) -> FaissVectors:
    return FaissVectors(dense.new_index(dim, n_expected, cfg.flat_limit, train))


def _load_lexical(folder: Path, cfg: Config, manifest: dict, resolve: Resolver) -> Bm25sLexical:
    # memory-mapped: pages in on demand; old builds stay readable after a swap
    return Bm25sLexical(BM25Index.load(folder / indexdir.BM25, mmap=True), resolve,
                        cfg.thai_ngram_weight)


def _load_vectors(folder: Path, cfg: Config, manifest: dict, resolve: Resolver,
                  readonly: bool = False) -> FaissVectors:
    """``readonly`` (servers): memory-map the vectors instead of reading them into each
    process, so N workers share one copy in the page cache (a 1M IVF-SQ8 index is 400 MB
    per worker otherwise). A mapped index must never be edited (FAISS segfaults writing
    to it), hence never for the indexer. Build folders are immutable once published."""
    flag = 0
    if readonly:
        flag = _MMAP_FLAG.get(manifest.get("dense", {}).get("kind", ""), 0)
    index = faiss.read_index(str(folder / indexdir.VECTORS), flag)
    _no_prefetch(index)
    if cfg.nprobe > 0 and dense.kind(index) != "flat":
        faiss.extract_index_ivf(index).nprobe = cfg.nprobe
    return FaissVectors(index, resolve)


BACKEND = Backend("local", _build_lexical, _new_vectors, _load_lexical, _load_vectors,
                  incremental=True)

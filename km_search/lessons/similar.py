"""Similar cases: nearest documents by the mean of their passage vectors in the index.

Vectors are read back from the live index through the backend interface
(``Searcher.passage_vectors``, under the searcher's lock); nothing is re-embedded. The
document matrix is cached per loaded build in a weak map beside the searcher, so a
reload computes it again and a dropped searcher frees it.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np

from km_search.search import Searcher

_CACHE: "weakref.WeakKeyDictionary[Searcher, tuple[Any, list[str], np.ndarray]]" = \
    weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def doc_vectors(searcher: Searcher) -> tuple[list[str], np.ndarray]:
    """Document ids and their L2-normalised mean passage vectors."""
    with _CACHE_LOCK:
        cached = _CACHE.get(searcher)
    if cached is not None and cached[0] == searcher.build:
        return cached[1], cached[2]
    build = searcher.build
    by_doc = searcher.doc_passages()
    ids = list(by_doc)
    if not ids:
        return [], np.zeros((0, searcher.vectors.dim), np.float32)
    mat = np.vstack([searcher.passage_vectors(by_doc[d]).mean(axis=0) for d in ids])
    mat /= np.linalg.norm(mat, axis=1, keepdims=True).clip(1e-12)
    mat = mat.astype(np.float32)
    with _CACHE_LOCK:
        _CACHE[searcher] = (build, ids, mat)
    return ids, mat


def similar_cases(searcher: Searcher, doc_id: str, k: int = 5, store: Any = None) -> list[dict]:
    """Other documents closest to ``doc_id`` (cosine of mean passage vectors), best first.
    With a lesson store, each result carries its case name and the factor tags it shares."""
    ids, mat = doc_vectors(searcher)
    if doc_id not in ids:
        raise KeyError(f"document {doc_id} is not in the index")
    scores = mat @ mat[ids.index(doc_id)]
    order = [i for i in np.argsort(-scores) if ids[i] != doc_id][:k]
    me = store.get(doc_id) if store is not None else None
    out = []
    for i in order:
        row = {"doc_id": ids[i], "score": float(scores[i])}
        other = store.get(ids[i]) if store is not None else None
        if other is not None:
            row.update(title=other.title, case=other.case_name, published=other.published,
                       shared_factors=[t for t in other.facets.get("factor", [])
                                       if me is not None and t in me.facets.get("factor", [])])
        out.append(row)
    return out

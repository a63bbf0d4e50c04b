"""Similar cases: nearest documents by the mean of their passage vectors in the index.

Vectors are read back from the live index (``Searcher.vectors``): a flat IndexIDMap2 can
reconstruct any passage by its pid; an IVF index gets a direct map first. Nothing is
re-embedded.
"""
from __future__ import annotations

from typing import Any

import faiss
import numpy as np


def _reconstruct(index: Any, pids: list[int]) -> np.ndarray:
    try:
        return np.vstack([index.reconstruct(int(p)) for p in pids])
    except RuntimeError:  # IVF without a direct map
        ivf = faiss.extract_index_ivf(index)
        ivf.make_direct_map()
        return np.vstack([index.reconstruct(int(p)) for p in pids])


def doc_vectors(searcher: Any) -> tuple[list[str], np.ndarray]:
    """Document ids and their L2-normalised mean passage vectors (cached on the searcher)."""
    cached = getattr(searcher, "_lesson_doc_vectors", None)
    if cached is not None and cached[0] == searcher.build:
        return cached[1], cached[2]
    by_doc: dict[str, list[int]] = {}
    for pid, doc_id in searcher.db.execute("SELECT pid, doc_id FROM passages ORDER BY pid"):
        by_doc.setdefault(doc_id, []).append(pid)
    ids = list(by_doc)
    if not ids:
        return [], np.zeros((0, searcher.vectors.d), np.float32)
    mat = np.vstack([_reconstruct(searcher.vectors, by_doc[d]).mean(axis=0) for d in ids])
    mat /= np.linalg.norm(mat, axis=1, keepdims=True).clip(1e-12)
    mat = mat.astype(np.float32)
    searcher._lesson_doc_vectors = (searcher.build, ids, mat)
    return ids, mat


def similar_cases(searcher: Any, doc_id: str, k: int = 5, store: Any = None) -> list[dict]:
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

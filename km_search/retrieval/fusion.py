"""Fusing BM25 and dense rankings.

Two methods, chosen by measurement on the iapp valid split (see ``km-search eval``):
- ``rrf``: reciprocal-rank fusion, score = sum 1/(k + rank). Needs no calibration but
  throws away how far apart scores are, and barely beats BM25 alone here.
- ``wsum``: each retriever's scores are scaled to [0, 1] over its candidate list
  (BM25 by its maximum, cosine by min-max), then mixed with weight ``w`` for BM25.
  A passage missing from one list gets 0 from it.
"""
from __future__ import annotations

import numpy as np


def rrf(lists: list[tuple[np.ndarray, np.ndarray]], k: int = 60) -> dict[int, float]:
    out: dict[int, float] = {}
    for ids, _ in lists:
        for rank, pid in enumerate(ids.tolist()):
            out[pid] = out.get(pid, 0.0) + 1.0 / (k + rank + 1)
    return out


def _minmax(scores: np.ndarray) -> np.ndarray:
    if len(scores) == 0:
        return scores
    lo, hi = float(scores.min()), float(scores.max())
    if hi - lo < 1e-9:
        return np.ones_like(scores)
    return (scores - lo) / (hi - lo)


def normalise(scores: np.ndarray, method: str) -> np.ndarray:
    if method == "max":
        return scores / scores.max() if len(scores) and scores.max() > 0 else scores
    return _minmax(scores)


def wsum(bm25: tuple[np.ndarray, np.ndarray], dense: tuple[np.ndarray, np.ndarray],
         w: float = 0.5) -> dict[int, float]:
    out: dict[int, float] = {}
    for pid, s in zip(bm25[0].tolist(), normalise(bm25[1], "max").tolist()):
        out[pid] = w * s
    for pid, s in zip(dense[0].tolist(), normalise(dense[1], "minmax").tolist()):
        out[pid] = out.get(pid, 0.0) + (1 - w) * s
    return out


def fuse(bm25, dense, method: str = "wsum", w: float = 0.5) -> list[tuple[int, float]]:
    """Fused (pid, score) list, best first."""
    scores = rrf([bm25, dense]) if method == "rrf" else wsum(bm25, dense, w)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))

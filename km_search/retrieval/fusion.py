"""Fusing BM25 and dense rankings.

Three methods:
- ``rrf``: reciprocal-rank fusion, score = sum 1/(k + rank). Needs no calibration but
  throws away how far apart scores are, and barely beats BM25 alone here.
- ``wsum``: each retriever's scores are scaled to [0, 1] over its candidate list
  (BM25 by its maximum, cosine by min-max), then mixed with weight ``w`` for BM25.
  A passage missing from one list gets 0 from it. Its flaw: dividing by the top BM25
  score gives the best lexical hit the full BM25 weight even when all it matched was
  one stray word of the query (an English question over Thai text: iapp English
  questions hybrid R@1 .20 against dense .75).
- ``adaptive`` (the default): BM25 is scaled by what the query could attain, not by
  the top hit. A passage's lexical score is its BM25 score over the top one *times the
  share of the query's idf mass it contains* (``coverage``; words the corpus lacks count
  at full idf), so a passage matching every rare word keeps its weight and one matching
  a single common or stray word keeps little. The BM25 weight also follows the query's
  script: Latin-script queries over a Thai corpus lean on the dense side. And it follows
  each retriever's confidence on this query: the drop of its normalised score from the
  top hit to the ``gap_depth``-th (a retriever whose top hit stands out is sure of it; one
  whose top hits are level is guessing), and ``gap`` times the difference of the two drops
  moves weight towards the surer side. Constants are chosen on the dev slices only
  (``km-search eval --set iapp,tatoeba --split dev --tune``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_LATIN = re.compile(r"[A-Za-z]")
_THAI = re.compile(r"[\u0e01-\u0e4e]")


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
         w: float = 0.5, bm25_norm: np.ndarray | None = None,
         dense_norm: np.ndarray | None = None) -> dict[int, float]:
    out: dict[int, float] = {}
    bn = normalise(bm25[1], "max") if bm25_norm is None else bm25_norm
    dn = normalise(dense[1], "minmax") if dense_norm is None else dense_norm
    for pid, s in zip(bm25[0].tolist(), np.asarray(bn).tolist()):
        out[pid] = w * s
    for pid, s in zip(dense[0].tolist(), np.asarray(dn).tolist()):
        out[pid] = out.get(pid, 0.0) + (1 - w) * s
    return out


def top_gap(norm: np.ndarray, depth: int) -> float:
    """How far a retriever's top normalised score stands above its ``depth``-th (0 when it
    has fewer than two candidates): its confidence in its own top hit on this query."""
    if len(norm) < 2:
        return 0.0
    top = np.sort(np.asarray(norm, dtype=np.float64))[::-1]
    return float(top[0] - top[min(depth, len(top) - 1)])


def latin_share(query: str) -> float:
    """Share of the query's letters that are Latin (0 = all Thai, 1 = all Latin)."""
    lat, th = len(_LATIN.findall(query)), len(_THAI.findall(query))
    return lat / (lat + th) if lat + th else 0.0


@dataclass(frozen=True)
class Evidence:
    """What the lexical side matched: per BM25 candidate, the share of the query's idf
    mass it contains, and the query's share of Latin letters."""

    coverage: np.ndarray
    latin: float = 0.0


@dataclass(frozen=True)
class Adaptive:
    """Constants of adaptive fusion (chosen on the dev slices; see the module docstring).

    BM25 weight = ``w_thai`` for an all-Thai query, ``w_latin`` for an all-Latin one,
    linear in between; ``power`` sharpens the coverage factor; ``gap`` (0 = off) shifts
    the weight by ``gap * (bm25 top gap - dense top gap)``, each gap measured from the top
    normalised score to the ``gap_depth``-th, clipped to [0.05, 0.95]."""

    w_thai: float = 0.6
    w_latin: float = 0.6
    power: float = 1.0
    gap: float = 0.0
    gap_depth: int = 5

    def weight(self, latin: float) -> float:
        return self.w_thai + (self.w_latin - self.w_thai) * latin


# Chosen on the dev slices only (iapp valid th/en/mixed, Tatoeba even lines; `km-search eval
# --set iapp,tatoeba --split dev --tune`, results/eval-tune-adaptive.json): the best mean
# MRR@10 among the settings where hybrid >= max(bm25, dense) on every slice. The confidence
# shift (gap, gap_depth) was swept with the weights around them (results/eval-tune-gap.json).
GAP, GAP_DEPTH = 0.3, 5
DEFAULT_ADAPTIVE = Adaptive(w_thai=0.7, w_latin=0.5, power=0.5, gap=GAP, gap_depth=GAP_DEPTH)


def adaptive(bm25: tuple[np.ndarray, np.ndarray], dense: tuple[np.ndarray, np.ndarray],
             ev: Evidence, p: Adaptive = Adaptive()) -> dict[int, float]:
    bn = normalise(bm25[1], "max")
    if len(bn):
        bn = bn * np.power(np.clip(ev.coverage, 0.0, 1.0), p.power)
    dn = normalise(dense[1], "minmax")
    w = p.weight(ev.latin)
    if p.gap and len(bn) and len(dn):
        shift = p.gap * (top_gap(bn, p.gap_depth) - top_gap(dn, p.gap_depth))
        w = float(np.clip(w + shift, 0.05, 0.95))
    return wsum(bm25, dense, w, bn, dn)


def fuse(bm25, dense, method: str = "wsum", w: float = 0.5, ev: Evidence | None = None,
         params: Adaptive | None = None) -> list[tuple[int, float]]:
    """Fused (pid, score) list, best first; equal scores highest pid first, the rule
    ``retrieval.backend.tie_order`` gives each retriever's list (identical passages under
    two documents tie in both lists and fused; opposite rules made a passage both
    retrievers ranked first come second after fusion)."""
    if method == "rrf":
        scores = rrf([bm25, dense])
    elif method == "adaptive" and ev is not None:
        scores = adaptive(bm25, dense, ev, params or Adaptive())
    else:
        scores = wsum(bm25, dense, w)
    return sorted(scores.items(), key=lambda kv: (-kv[1], -kv[0]))

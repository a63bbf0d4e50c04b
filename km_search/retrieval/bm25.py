"""BM25 over PyThaiNLP tokens, backed by bm25s (sparse matrices, fast queries).

bm25s's own tokeniser splits on Latin word boundaries and breaks Thai, so we always
hand it tokens from km_search.thai.tokenize. Passage positions map to passage ids
through ``pids``; the whole state saves to and loads from one folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import bm25s
import numpy as np


class BM25Index:
    def __init__(self, retriever: bm25s.BM25, pids: np.ndarray):
        self.retriever = retriever
        self.pids = pids
        self._pos = {int(p): i for i, p in enumerate(pids)}

    @classmethod
    def build(cls, tokens: Sequence[list[str]], pids: Sequence[int], k1: float = 1.2,
              b: float = 0.75) -> "BM25Index":
        r = bm25s.BM25(k1=k1, b=b, method="lucene")
        r.index([list(t) for t in tokens], show_progress=False)
        return cls(r, np.asarray(pids, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.pids)

    def search(self, query_tokens: list[str], k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (pids, scores) for one tokenised query; ``allowed`` is a bool mask."""
        ids = self.retriever.get_tokens_ids(query_tokens)
        if not ids or len(self.pids) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = self.retriever.get_scores_from_ids(ids)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return self.pids[top], scores[top].astype(np.float32)

    def position_mask(self, pids: set[int]) -> np.ndarray:
        mask = np.zeros(len(self.pids), dtype=bool)
        for p in pids:
            i = self._pos.get(p)
            if i is not None:
                mask[i] = True
        return mask

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.retriever.save(str(folder))
        np.save(folder / "pids.npy", self.pids)

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> "BM25Index":
        r = bm25s.BM25.load(str(folder), mmap=mmap)
        return cls(r, np.load(folder / "pids.npy"))

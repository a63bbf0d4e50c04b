"""Optional second-stage reranking of the fused top-N with a cross-encoder.

A cross-encoder reads the query and a passage together, so it can judge relevance that
neither BM25 nor the bi-encoder sees; it is also one model call per (query, passage)
pair, so it only reorders the first ``rerank_top`` fused candidates. Off by default: no
cross-encoder weights ship offline. ``KM_SEARCH_RERANKER`` names a sentence-transformers
CrossEncoder (a local folder, or a hub name where the hub can be reached).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


class RerankerError(ValueError):
    """The configured reranker cannot be loaded; the message says what to set."""


class CrossEncoderReranker:
    """Reorders the head of a ranked list by a sentence-transformers CrossEncoder's scores."""

    def __init__(self, name_or_path: str, top_n: int = 20, batch_size: int = 16):
        if top_n < 1:
            raise RerankerError(f"rerank_top must be at least 1 (got {top_n})")
        try:
            from sentence_transformers import CrossEncoder

            self.model = CrossEncoder(name_or_path, device="cpu")
        except Exception as e:  # hub, config, weights and tokenizer errors have many types
            first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise RerankerError(
                f"KM_SEARCH_RERANKER={name_or_path!r} could not be loaded as a CrossEncoder "
                f"({type(e).__name__}: {first}); set it to a local folder holding a "
                "sentence-transformers CrossEncoder, or unset it to search without reranking"
            ) from None
        self.name, self.top_n, self.batch_size = name_or_path, top_n, batch_size

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Relevance score of each text for the query (higher = more relevant)."""
        if not texts:
            return np.zeros(0, np.float32)
        out = self.model.predict([(query, t) for t in texts], batch_size=self.batch_size,
                                 show_progress_bar=False, convert_to_numpy=True)
        out = np.asarray(out, dtype=np.float32)
        return out if out.ndim == 1 else out[:, -1]  # two-label models: the "relevant" logit

    def rerank(self, query: str, ranked: list[tuple[int, float]],
               text_of: Callable[[list[int]], dict[int, str]]) -> list[tuple[int, float]]:
        """``ranked`` with its first ``top_n`` entries reordered by the cross-encoder (their
        scores become its scores); the rest keep their order below them."""
        head = ranked[: self.top_n]
        texts = text_of([p for p, _ in head])
        head = [(p, s) for p, s in head if p in texts]
        sc = self.scores(query, [texts[p] for p, _ in head])
        order = sorted(range(len(head)), key=lambda i: (-float(sc[i]), i))
        return [(head[i][0], float(sc[i])) for i in order] + ranked[self.top_n:]


def get_reranker(name: str | None, top_n: int) -> CrossEncoderReranker | None:
    """The configured reranker, or None when ``name`` is unset or empty (the default)."""
    if not name or not str(name).strip():
        return None
    return CrossEncoderReranker(str(name).strip(), top_n)

"""Any sentence-transformers model (torch), with per-model query/passage prefixes.

Used for the default model's ``torch`` runtime and for any other model name or folder.
"""
from __future__ import annotations

import hashlib
import os
from typing import Callable, Sequence

import numpy as np

from .base import Embedder, encode_sorted, prefixes_for


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, with per-model query/passage prefixes."""

    def __init__(self, name_or_path: str, *, label: str | None = None,
                 batch_size: int = 16, fingerprint: str | None = None):
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(max(1, os.cpu_count() or 1))
        self.model = SentenceTransformer(name_or_path, device="cpu")
        self.name = label or name_or_path
        self.dim = int(self.model.get_embedding_dimension()
                       if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())
        self.query_prefix, self.passage_prefix = prefixes_for(self.name + " " + name_or_path)
        self.batch_size = batch_size
        self.fingerprint = fingerprint or hashlib.sha1(
            f"{name_or_path}|{self.dim}".encode()).hexdigest()[:16]

    def _encode(self, texts: Sequence[str], progress: Callable[[int], None] | None) -> np.ndarray:
        return encode_sorted(texts, self.batch_size, self.dim, lambda batch: self.model.encode(
            batch, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False), progress)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self.query_prefix + t for t in texts], None)

    def encode_passages(self, texts: Sequence[str],
                        progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts], progress)

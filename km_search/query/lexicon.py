"""An English -> Thai lexicon induced from the embedding model, for BM25 query expansion.

The hand glossary (km_search/thai/glossary.py) covers provinces, agencies and KM terms;
an English question about anything else reaches BM25 as English words a Thai corpus does
not hold. Here each Latin-script content word of a query is embedded (the default model
is multilingual) and compared with the corpus's own Thai words (those in at least
``min_df`` passages, embedded the same way, once, through the embedding cache); Thai
words at cosine >= ``threshold`` join the BM25 query, as glossary terms do. Nothing is
written per question. The dense side still sees the original query.

Measured on the dev slices (bench/evaluate.py; README, "English questions"): e5 word
similarities are compressed (most pairs 0.86-0.92), so only a high threshold keeps
hybrid >= both retrievers everywhere; at 0.92 the gain is small, and embedding a corpus
vocabulary costs minutes on a CPU, so the lexicon is off by default.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from km_search.embed.cache import EmbeddingCache
from km_search.query.stopwords import is_stop

THAI_WORD = re.compile(r"^[\u0e01-\u0e4e]{2,}$")
LATIN_WORD = re.compile(r"^[a-z][a-z'\-]+$")
MAX_WORDS = 20_000  # most frequent corpus words kept: bounds the one-off embedding cost


def corpus_words(index, min_df: int, max_words: int = MAX_WORDS) -> list[str]:
    """Thai words of a BM25 index found in at least ``min_df`` passages, most frequent first."""
    df = [(index.doc_freq(i), t) for t, i in index.vocab.items() if THAI_WORD.match(t)]
    return [t for d, t in sorted(df, key=lambda x: (-x[0], x[1])) if d >= min_df][:max_words]


def word_vectors(emb, words: Sequence[str], cache: EmbeddingCache | None = None) -> np.ndarray:
    """Unit vectors of single words, embedded as queries; cached under the model's
    fingerprint + '|word', so a corpus vocabulary is embedded once per model (always by
    the full model: a query student's vectors would not match the cached ones)."""
    emb = getattr(emb, "full", emb)
    if not words:
        return np.zeros((0, emb.dim), np.float32)
    vecs = (emb.encode_queries(list(words)) if cache is None
            else cache.cached(emb.fingerprint + "|word", words, emb.encode_queries))
    vecs = np.asarray(vecs, np.float32)
    return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)


class InducedLexicon:
    """Corpus Thai words and their vectors; :meth:`expand` maps a query's English words."""

    def __init__(self, words: list[str], vecs: np.ndarray, threshold: float, top: int = 1):
        if not 0 < threshold <= 1:
            raise ValueError(f"lexicon threshold must be in (0, 1] (got {threshold})")
        self.words, self.vecs, self.threshold, self.top = words, vecs, threshold, top

    @classmethod
    def build(cls, index, emb, threshold: float, min_df: int = 3,
              cache_path: Path | None = None) -> "InducedLexicon":
        words = corpus_words(index, min_df)
        cache = EmbeddingCache(cache_path) if cache_path else None
        try:
            return cls(words, word_vectors(emb, words, cache), threshold)
        finally:
            if cache is not None:
                cache.close()

    def latin_words(self, tokens: Sequence[str]) -> list[str]:
        return [t for t in dict.fromkeys(tokens) if LATIN_WORD.match(t) and not is_stop(t)]

    def expand(self, tokens: Sequence[str], emb, cache_path: Path | None = None) -> list[str]:
        """Thai words for the Latin-script content words of ``tokens`` (none already there)."""
        latin = self.latin_words(tokens)
        if not latin or not self.words:
            return []
        cache = EmbeddingCache(cache_path) if cache_path else None
        try:
            sims = word_vectors(emb, latin, cache) @ self.vecs.T
        finally:
            if cache is not None:
                cache.close()
        out: list[str] = []
        for row in sims:
            for i in np.argsort(-row)[: self.top]:
                w = self.words[int(i)]
                if row[i] >= self.threshold and w not in tokens and w not in out:
                    out.append(w)
        return out

"""BM25 over PyThaiNLP tokens: bm25s builds the sparse score matrix, bm25_topk queries it.

bm25s's own tokeniser splits on Latin word boundaries and breaks Thai, so we always
hand it tokens from km_search.thai.tokenize. Passage positions map to passage ids
through ``pids``; the whole state saves to and loads from one folder.
"""
from __future__ import annotations

import math
from array import array
from pathlib import Path
from typing import Iterable, Sequence

import bm25s
import numpy as np
import scipy.sparse as sp

from km_search.thai.ngrams import token_weight

from .bm25_topk import _lookup, column_max, top_k


class BM25Index:
    def __init__(self, retriever: bm25s.BM25, pids: np.ndarray, colmax: np.ndarray | None = None):
        self.retriever = retriever
        self.pids = pids
        sc = retriever.scores  # np.asarray: plain views of the memory maps (no copy)
        self._csc = tuple(np.asarray(sc[k]) for k in ("data", "indices", "indptr"))
        self.colmax = colmax if colmax is not None else column_max(self._csc[0], self._csc[2])
        self._by_pid: tuple[np.ndarray, np.ndarray] | None = None  # see _find

    @classmethod
    def build(cls, tokens: Iterable[Sequence[str]], pids: Sequence[int], k1: float = 1.2,
              b: float = 0.75, block: int = 1 << 22) -> "BM25Index":
        """BM25 (Lucene variant) over ``tokens``, one token list per pid, read ONCE in order
        so callers can stream them (from passages.db, or generated): each passage is
        reduced to its (term id, count) pairs at once, kept in numpy parts of ~``block``
        pairs, and the parts are scored and placed straight into the CSC arrays (a counting
        sort by term). bm25s's own ``index()`` holds every passage's token list and then
        their ids as Python lists, which made the 1M bench build peak at 6-11 GB; here the
        peak is the pairs (8 bytes each; 118M at 1M passages) plus the matrix (8 bytes a
        pair). The score matrix equals bm25s's bit for bit: the same arithmetic, in the same
        order and dtypes, vectorised (tests/km_search/retrieval/test_bm25_fusion.py)."""
        from collections import Counter

        vocab: dict[str, int] = {}
        ids, tfs, parts = array("i"), array("I"), []
        lens, widths = [], []

        def flush() -> None:  # a part ends with a whole passage
            if ids:
                parts.append((np.frombuffer(ids, np.int32).copy(), np.frombuffer(tfs, np.uint32).copy(),
                              len(lens) - sum(p[2] for p in parts)))
                del ids[:], tfs[:]
        for toks in tokens:
            c = Counter(toks)
            ids.extend([vocab.setdefault(t, len(vocab)) for t in c])
            tfs.extend(c.values())
            lens.append(len(toks))
            widths.append(len(c))
            if len(ids) >= block:
                flush()
        flush()
        n = len(lens)
        if n != len(pids):
            raise ValueError(f"{n} token lists for {len(pids)} passage ids")
        if not vocab:  # no passage has a token: bm25s's own path handles the degenerate case
            r = bm25s.BM25(k1=k1, b=b, method="lucene")
            r.index([[] for _ in range(n)], show_progress=False)
            return cls(r, np.asarray(pids, dtype=np.int64))
        n_vocab = len(vocab)
        avg = np.array(lens).mean()  # as bm25s: float64 mean of the lengths
        lens_arr, width = np.asarray(lens, dtype=np.float64), np.asarray(widths, dtype=np.int64)
        del lens, widths
        df = np.zeros(n_vocab, dtype=np.int64)
        for v, _, _ in parts:
            df += np.bincount(v, minlength=n_vocab)
        # idf per document frequency, with math.log as bm25s (np.log may round otherwise)
        uniq, inv = np.unique(df, return_inverse=True)
        per_df = np.array([math.log(1 + (n - d + 0.5) / (d + 0.5)) if d else 0.0 for d in uniq.tolist()])
        idf = per_df[inv].astype(np.float32)  # bm25s stores idf as float32
        indptr = np.zeros(n_vocab + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        del df, inv
        indices = np.empty(int(indptr[-1]), dtype=np.int32)
        data = np.empty(int(indptr[-1]), dtype=np.float32)
        fill, first = indptr[:-1].copy(), 0
        while parts:  # passage order: within each term, passages stay ascending (as scipy's)
            v, t, nd = parts.pop(0)
            doc = np.repeat(np.arange(first, first + nd, dtype=np.int32), width[first:first + nd])
            first += nd
            tf = t.astype(np.float32).astype(np.float64)
            # bm25s per passage: tf / (k1 * ((1 - b) + b * l_d / l_avg) + tf), times idf
            score = (idf[v].astype(np.float64) * (tf / (k1 * ((1 - b) + b * lens_arr[doc] / avg) + tf))
                     ).astype(np.float32)
            order = np.argsort(v, kind="stable")
            vs = v[order]
            starts = np.flatnonzero(np.r_[True, vs[1:] != vs[:-1]])
            runs = np.diff(np.r_[starts, len(vs)])
            pos = fill[vs] + (np.arange(len(vs)) - np.repeat(starts, runs))
            indices[pos], data[pos] = doc[order], score[order]
            fill[vs[starts]] += runs
        small = indptr[-1] < 2**31  # scipy's index dtype
        r = bm25s.BM25(k1=k1, b=b, method="lucene")
        r.scores = {"data": data, "indices": indices,
                    "indptr": indptr.astype(np.int32) if small else indptr, "num_docs": n}
        if "" not in vocab:  # bm25s's empty token, past the matrix's last column
            vocab[""] = n_vocab
        r.vocab_dict = vocab
        r.unique_token_ids_set = set(vocab.values())
        r.nonoccurrence_array = None
        return cls(r, np.asarray(pids, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.pids)

    @property
    def vocab(self) -> dict[str, int]:
        """Token -> term id (a column of :meth:`passage_weights`)."""
        return {str(t): int(i) for t, i in self.retriever.vocab_dict.items()}

    def passage_weights(self):
        """Each passage's BM25 weight per term, as a scipy CSR matrix (passages x terms):
        a query's score is the sum of its terms' columns, what other engines store as
        sparse vectors."""
        data, indices, indptr = self._csc
        return sp.csc_matrix((data, indices, indptr),
                             shape=(len(self.pids), len(indptr) - 1)).tocsr()

    def search(self, query_tokens: list[str], k: int, allowed: np.ndarray | None = None,
               ngram_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (pids, scores) for one tokenised query; ``allowed`` is a bool mask.
        ``ngram_weight``: the weight of each Thai character n-gram token against a word's 1
        (km_search/thai/ngrams.py); a token repeated in the query counts once per copy."""
        vocab = self.retriever.vocab_dict
        known = [t for t in query_tokens if t in vocab]
        if not known or len(self.pids) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        weights = None
        if ngram_weight != 1.0:
            weights = [token_weight(t, ngram_weight) for t in known]
        top, scores = top_k(*self._csc, self.colmax, len(self.pids), [vocab[t] for t in known],
                            min(k, len(self.pids)), allowed, weights)
        return self.pids[top], scores

    def doc_freq(self, term_id: int | None) -> int:
        """Passages holding a vocabulary term (its column's length); 0 for None."""
        indptr = self._csc[2]
        return int(indptr[term_id + 1] - indptr[term_id]) if (
            term_id is not None and term_id + 1 < len(indptr)) else 0

    def idf(self, query_tokens: list[str], ngram_weight: float = 1.0) -> dict[str, float]:
        """Lucene idf of each distinct query token (an n-gram's times ``ngram_weight``); a
        word the corpus lacks gets the idf of df = 0 (the most a word can weigh), so it
        counts in what the query asks for."""
        n = len(self.pids)
        out: dict[str, float] = {}
        for t in dict.fromkeys(query_tokens):
            df = self.doc_freq(self.retriever.vocab_dict.get(t))
            out[t] = float(np.log1p((n - df + 0.5) / (df + 0.5))) * token_weight(t, ngram_weight)
        return out

    def coverage(self, query_tokens: list[str], pids: np.ndarray,
                 ngram_weight: float = 1.0) -> np.ndarray:
        """For each passage in ``pids``: the share of the query's idf mass (distinct
        tokens) that it contains. 1 = every query word occurs in it."""
        idf = self.idf(query_tokens, ngram_weight)
        total = sum(idf.values())
        if not len(pids) or total <= 0:
            return np.zeros(len(pids), dtype=np.float32)
        pos = self._positions(pids)
        data, indices, indptr = self._csc
        got = np.zeros(len(pids), dtype=np.float64)
        for t, w in idf.items():
            i = self.retriever.vocab_dict.get(t)
            if i is None or i + 1 >= len(indptr):
                continue
            got += w * (_lookup(indices, data, int(indptr[i]), int(indptr[i + 1]), pos) > 0)
        return (got / total).astype(np.float32)

    def _find(self, pids) -> tuple[np.ndarray, np.ndarray]:
        """Positions of ``pids`` in this index and whether each is there. A sorted copy of
        the pids and its order (16 bytes a passage) instead of a dict (~100 bytes a
        passage, ~0.3 s to build at 1M), searched by bisection."""
        if self._by_pid is None:
            order = np.argsort(self.pids, kind="stable")
            self._by_pid = (self.pids[order], order)
        keys, order = self._by_pid
        pids = np.asarray(pids, dtype=np.int64).reshape(-1)
        if not len(keys):
            return np.zeros(len(pids), np.int64), np.zeros(len(pids), bool)
        at = np.minimum(np.searchsorted(keys, pids), len(keys) - 1)
        return order[at], keys[at] == pids

    def _positions(self, pids: np.ndarray) -> np.ndarray:
        pos, found = self._find(pids)
        if not found.all():
            raise KeyError(f"passages not in the BM25 index: {np.asarray(pids)[~found][:5].tolist()}")
        return pos

    def position_mask(self, pids: set[int]) -> np.ndarray:
        mask = np.zeros(len(self.pids), dtype=bool)
        pos, found = self._find(np.fromiter(pids, np.int64, len(pids)))
        mask[pos[found]] = True
        return mask

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.retriever.save(str(folder))
        np.save(folder / "pids.npy", self.pids)
        np.save(folder / "colmax.npy", self.colmax)

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> "BM25Index":
        r = bm25s.BM25.load(str(folder), mmap=mmap)
        cm = folder / "colmax.npy"  # absent in builds made before pruned search existed
        return cls(r, np.load(folder / "pids.npy"), np.load(cm) if cm.exists() else None)

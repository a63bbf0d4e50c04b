"""The local backend's FAISS files: what a server memory-maps searches exactly as what the
indexer reads into memory. Real FAISS indexes saved to and loaded from a temporary folder."""
from __future__ import annotations

import faiss
import numpy as np
import pytest

from km_search.retrieval import local
from km_search.retrieval.filters import Filter
from km_search.settings import load_config


def _vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("n,kind", [(300, "flat"), (6000, "ivf-sq8")])
def test_memory_mapped_vectors_search_and_reconstruct_as_loaded_ones(tmp_path, n, kind):
    cfg = load_config(home=str(tmp_path / "home"), flat_limit=1000)
    vecs, pids = _vectors(n), np.arange(1, n + 1, dtype=np.int64)  # pids from 1, as passages.db
    built = local.BACKEND.new_vectors(tmp_path, cfg, vecs.shape[1], n, vecs)
    built.add(pids, vecs)
    assert built.describe()["kind"] == kind
    built.save(tmp_path)
    man = {"dense": built.describe()}
    allowed = pids[pids % 7 == 3]
    resolve = lambda where: allowed  # noqa: E731 - a filter resolved to a pid list
    loaded = local.BACKEND.load_vectors(tmp_path, cfg, man, resolve)
    mapped = local.BACKEND.load_vectors(tmp_path, cfg, man, resolve, readonly=True)
    if kind == "ivf-sq8":  # the lists are read from the mapped file, not copied in
        ivf = faiss.extract_index_ivf(mapped.index)
        assert isinstance(faiss.downcast_InvertedLists(ivf.invlists), faiss.OnDiskInvertedLists)
        assert not isinstance(faiss.downcast_InvertedLists(
            faiss.extract_index_ivf(loaded.index).invlists), faiss.OnDiskInvertedLists)
    where = Filter.of(("source", "eq", "x"))
    for q in _vectors(25, seed=1):
        a, b = loaded.search(q, 10), mapped.search(q, 10)
        assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist() and len(a[0]) == 10
        fa, fb = loaded.search(q, 10, where), mapped.search(q, 10, where)
        assert fa[0].tolist() == fb[0].tolist() and set(fb[0].tolist()) <= set(allowed.tolist())
    some = [1, 2, n // 2, n]  # by pid (IVF: through a hash-table direct map)
    assert np.array_equal(loaded.reconstruct(some), mapped.reconstruct(some))
    assert np.allclose(mapped.reconstruct(some), vecs[np.asarray(some) - 1], atol=0.02)

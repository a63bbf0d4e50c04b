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
        lists = faiss.downcast_InvertedLists(ivf.invlists)
        assert isinstance(lists, faiss.OnDiskInvertedLists)
        assert lists.prefetch_nthread == 0  # FAISS's default, 32 threads started per query
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


def test_pid_mask_equals_isin_and_filtered_searches_reuse_it():
    """The filter mask by pid table against the plain reference, np.isin; and a repeated
    filter reuses the mask (the same object) while another filter gets its own."""
    from km_search.retrieval.bm25 import BM25Index
    from km_search.retrieval.filters import Filter
    from km_search.retrieval.local import Bm25sLexical, _pid_mask

    rng = np.random.default_rng(3)
    for n in (1, 10, 1000):
        pids = rng.permutation(np.arange(1, 3 * n + 1))[:n].astype(np.int64)
        for allowed in (pids[:0], pids[: n // 2], rng.integers(1, 5 * n, n).astype(np.int64)):
            assert np.array_equal(_pid_mask(pids, allowed), np.isin(pids, allowed))

    docs = [["ขอนแก่น", "ศึกษา"], ["พังงา", "ศึกษา"], ["ขอนแก่น", "รางวัล"], ["ศึกษา"]]
    calls = []

    def resolve(where):
        calls.append(where)
        return np.array([1, 3] if "ขอนแก่น" in str(where) else [2], np.int64)

    lex = Bm25sLexical(BM25Index.build(docs, [1, 2, 3, 4]), resolve)
    kk, pg = Filter.of(("province", "has", "ขอนแก่น")), Filter.of(("province", "has", "พังงา"))
    ids, _ = lex.search(["ศึกษา"], 10, kk)
    assert ids.tolist() == [1]
    assert lex.search(["ศึกษา"], 10, pg)[0].tolist() == [2]
    assert lex.search(["ขอนแก่น"], 10, kk)[0].tolist() in ([1, 3], [3, 1])
    assert calls == [kk, pg]  # the Khon Kaen mask was computed once


def test_filtered_dense_search_reuses_the_selector_of_a_recurring_filter():
    from km_search.retrieval.filters import Filter
    from km_search.retrieval.local import FaissVectors

    rng = np.random.default_rng(5)
    vecs = rng.normal(size=(50, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    calls = []

    def resolve(where):
        calls.append(where)
        return np.arange(1, 51, 2, dtype=np.int64) if "odd" in str(where) else np.zeros(0, np.int64)

    fv = FaissVectors(faiss.IndexIDMap2(faiss.IndexFlatIP(8)), resolve)
    fv.add(np.arange(1, 51, dtype=np.int64), vecs)
    odd, none = Filter.of(("source", "eq", "odd")), Filter.of(("source", "eq", "nothing"))
    for q in vecs[:6]:
        ids, _ = fv.search(q, 5, odd)
        assert len(ids) == 5 and all(i % 2 == 1 for i in ids)
        exact = [i for i in (np.argsort(-(vecs @ q)) + 1) if i % 2 == 1][:5]
        assert ids.tolist() == exact  # the filtered top 5 of an exact search
        assert len(fv.search(q, 5, none)[0]) == 0
    assert calls == [odd, none]

"""BM25 scores checked against a plain reference implementation; fusion maths."""
import math

import numpy as np
import pytest

from corpus.seeds import bundled_seeds
from km_search.chunking import chunk_document, passage_input
from km_search.retrieval.bm25 import BM25Index
from km_search.retrieval.fusion import fuse, rrf, wsum
from km_search.thai import tokenize


def reference_bm25(corpus: list[list[str]], query: list[str], k1=1.2, b=0.75) -> list[float]:
    """Lucene BM25: idf = ln(1 + (N - df + .5)/(df + .5)); tf part with length norm."""
    N = len(corpus)
    avgdl = sum(len(d) for d in corpus) / N
    out = []
    for d in corpus:
        s = 0.0
        for t in set(query):
            df = sum(1 for x in corpus if t in x)
            if not df:
                continue
            tf = d.count(t)
            idf = math.log(1 + (N - df + 0.5) / (df + 0.5))
            s += idf * tf / (tf + k1 * (1 - b + b * len(d) / avgdl))
        out.append(s)
    return out


@pytest.fixture(scope="module")
def seed_tokens():
    chunks = [c for d in bundled_seeds() for c in chunk_document(d, 120, 1)]
    return [tokenize(passage_input(c)) for c in chunks]


@pytest.mark.parametrize("query", ["ปัจจัยความสำเร็จ ขอนแก่นศึกษา", "PMQA 4.0 รางวัล",
                                   "สมัชชาพังงา เครือข่ายประชาชน", "๒๕๖๔ แผนเพิ่มประสิทธิภาพ"])
def test_bm25_scores_match_reference(seed_tokens, query):
    idx = BM25Index.build(seed_tokens, list(range(100, 100 + len(seed_tokens))))
    q = tokenize(query)
    pids, scores = idx.search(q, k=len(seed_tokens))
    ref = reference_bm25(seed_tokens, q)
    got = dict(zip(pids.tolist(), scores.tolist()))
    for i, r in enumerate(ref):
        assert got.get(100 + i, 0.0) == pytest.approx(r, rel=1e-4, abs=1e-5)
    assert pids[0] == 100 + int(np.argmax(ref))


def _bm25s_matrix(tokens: list[list[str]]):
    """bm25s's own in-memory index() over the same tokens: (passages x terms by name)."""
    import bm25s
    import scipy.sparse as sp

    r = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    r.index([list(t) for t in tokens], show_progress=False)
    sc = r.scores
    m = sp.csc_matrix((sc["data"], sc["indices"], sc["indptr"]),
                      shape=(len(tokens), len(sc["indptr"]) - 1))
    return m, r.vocab_dict


@pytest.mark.parametrize("block", [1 << 22, 97])  # one part; many parts (each ends with a passage)
def test_streamed_build_equals_bm25s_index_bit_for_bit(seed_tokens, tmp_path, block):
    """BM25Index.build reads each passage's tokens once from any iterable (the indexer
    streams them from passages.db) and yields exactly bm25s's own score matrix: every
    (passage, term) weight equal as float32, the same terms, the same empty token; saved
    and loaded (memory-mapped) it searches alike. Repeated tokens, an empty passage and
    Thai digits included."""
    tokens = seed_tokens + [[], ["๒๕๖๔", "๒๕๖๔", "๒๕๖๔", "การ"], seed_tokens[0] * 3]
    ref, ref_vocab = _bm25s_matrix(tokens)
    idx = BM25Index.build((list(t) for t in tokens), range(7, 7 + len(tokens)), block=block)
    got = idx.passage_weights().tocsc()
    vocab = idx.vocab
    assert set(vocab) == set(ref_vocab) and vocab[""] == got.shape[1] == ref.shape[1]
    order = [vocab[t] for t, _ in sorted(ref_vocab.items(), key=lambda kv: kv[1]) if t != ""]
    ref_sorted = [t for t, _ in sorted(ref_vocab.items(), key=lambda kv: kv[1]) if t != ""]
    assert [ref_vocab[t] for t in ref_sorted] == list(range(ref.shape[1]))
    mine = got[:, order]
    assert (mine != ref).nnz == 0 and mine.nnz == ref.nnz
    assert np.array_equal(mine.toarray().view(np.uint32), ref.toarray().view(np.uint32))
    idx.save(tmp_path / "bm25")
    again = BM25Index.load(tmp_path / "bm25", mmap=True)
    for q in ("ปัจจัยความสำเร็จ ขอนแก่นศึกษา", "๒๕๖๔ การ"):
        a, b = idx.search(tokenize(q), 20), again.search(tokenize(q), 20)
        assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist()
    with pytest.raises(ValueError, match="token lists"):
        BM25Index.build(iter(tokens), range(len(tokens) + 1))


def test_bm25_unknown_words_and_mask(seed_tokens, tmp_path):
    idx = BM25Index.build(seed_tokens, list(range(len(seed_tokens))))
    assert len(idx.search(["คำที่ไม่มีอยู่จริงเลย"], 5)[0]) == 0
    q = tokenize("ขอนแก่นศึกษา")
    top = idx.search(q, 3)[0]
    mask = idx.position_mask({int(top[1])})
    assert idx.search(q, 3, mask)[0].tolist() == [int(top[1])]
    idx.save(tmp_path / "bm25")
    again = BM25Index.load(tmp_path / "bm25")
    assert again.search(q, 3)[0].tolist() == top.tolist()


def test_fused_ties_follow_the_retrievers_tie_rule():
    """Identical passages under two documents get identical fused scores; the fused list
    orders them as each retriever does (retrieval.backend.tie_order: highest pid first),
    so a passage both retrievers rank first is first after fusion too."""
    from km_search.retrieval.backend import tie_order
    from km_search.retrieval.fusion import Evidence

    bm = tie_order((np.array([7, 9, 3]), np.array([5.0, 5.0, 1.0])))
    de = tie_order((np.array([7, 9, 4]), np.array([0.9, 0.9, 0.5])))
    assert bm[0][0] == de[0][0] == 9
    for method in ("wsum", "rrf"):
        assert [p for p, _ in fuse(bm, de, method, 0.5)][:2] == [9, 7]
    ev = Evidence(np.array([1.0, 1.0, 0.5]))
    assert [p for p, _ in fuse(bm, de, "adaptive", ev=ev)][:2] == [9, 7]


def test_rrf_formula():
    a = (np.array([1, 2, 3]), np.array([9.0, 5.0, 1.0]))
    b = (np.array([3, 1]), np.array([0.9, 0.8]))
    s = rrf([a, b], k=60)
    assert s[1] == pytest.approx(1 / 61 + 1 / 62)
    assert s[3] == pytest.approx(1 / 63 + 1 / 61)
    assert s[2] == pytest.approx(1 / 62)


def test_weighted_sum_normalises_each_list():
    bm = (np.array([1, 2]), np.array([10.0, 5.0]))
    de = (np.array([2, 3]), np.array([0.9, 0.7]))
    s = wsum(bm, de, w=0.3)
    assert s[1] == pytest.approx(0.3 * 1.0)
    assert s[2] == pytest.approx(0.3 * 0.5 + 0.7 * 1.0)
    assert s[3] == pytest.approx(0.0)
    ranked = fuse(bm, de, "wsum", 0.3)
    assert [p for p, _ in ranked] == [2, 1, 3]
    assert [p for p, _ in fuse(bm, de, "wsum", 1.0)][:2] == [1, 2]  # BM25 only
    assert fuse((np.zeros(0, int), np.zeros(0)), de, "wsum", 0.5)[0][0] == 2


@pytest.fixture(scope="module")
def big_index(seed_tokens):
    """4,000 passages resampled from the seeds (common Thai words in most of them,
    rare names in few), each with a unique marker word, as the bench builds them."""
    rng = np.random.default_rng(7)
    pick = rng.integers(0, len(seed_tokens), size=4000)
    toks = [seed_tokens[i][: int(rng.integers(min(20, len(seed_tokens[i])), len(seed_tokens[i]) + 1))] + [f"m{j}"]
            for j, i in enumerate(pick)]
    return BM25Index.build(toks, list(range(10, 4010))), toks


@pytest.mark.parametrize("query", ["ปัจจัยความสำเร็จของขอนแก่นศึกษา คืออะไร",
                                   "การพัฒนาระบบราชการ 4.0 ของจังหวัด", "สมัชชาพังงา m17 m3999",
                                   "ที่ การ ของ และ ใน", "m5 m6 m7 ขอนแก่น ขอนแก่น"])
@pytest.mark.parametrize("k", [1, 10, 100])
def test_pruned_top_k_equals_full_scoring(big_index, query, k):
    """The MaxScore path must return exactly what scoring every passage returns."""
    idx, _ = big_index
    q = tokenize(query)
    ids = idx.retriever.get_tokens_ids(q)
    full = idx.retriever.get_scores_from_ids(ids)  # bm25s scores all passages
    pids, scores = idx.search(q, k)
    nz = np.flatnonzero(full > 0)
    want = nz[np.lexsort((nz, -full[nz]))][:k]
    assert len(pids) == len(want)
    np.testing.assert_allclose(scores, full[want], rtol=1e-5)  # same scores, same order
    np.testing.assert_allclose(full[pids - 10], scores, rtol=1e-5)
    # the same passages, except that passages tied at the cut score may swap places
    differ = set((pids - 10).tolist()) ^ set(want.tolist())
    assert all(np.isclose(full[i], full[want][-1], rtol=1e-5) for i in differ), differ
    mask = np.zeros(len(idx), bool)
    mask[::3] = True
    mp, ms = idx.search(q, k, mask)
    mfull = np.where(mask, full, 0)
    mnz = np.flatnonzero(mfull > 0)
    mwant = mnz[np.lexsort((mnz, -mfull[mnz]))][:k]
    assert ((mp - 10) % 3 == 0).all()
    np.testing.assert_allclose(ms, mfull[mwant], rtol=1e-5)


def test_pruning_skips_common_postings(big_index):
    """A rare name plus common words takes the pruned path (few candidates scored)."""
    from km_search.retrieval import bm25_topk

    idx, toks = big_index
    q = tokenize("ขอนแก่นศึกษา ของ การ ที่")
    ids = idx.retriever.get_tokens_ids(q)
    sc = idx.retriever.scores
    calls = []
    real = bm25_topk._lookup
    try:
        bm25_topk._lookup = lambda *a: calls.append(len(a[-1])) or real(*a)
        idx.search(q, 10)
    finally:
        bm25_topk._lookup = real
    common = max(int(sc["indptr"][t + 1] - sc["indptr"][t]) for t in ids)
    assert calls and max(calls) < common  # common terms looked up for few passages only


def test_fusion_weight_follows_the_model_unless_set(monkeypatch):
    from km_search.settings import load_config

    monkeypatch.delenv("KM_SEARCH_BM25_WEIGHT", raising=False)
    monkeypatch.delenv("KM_SEARCH_MODEL", raising=False)
    assert load_config().bm25_weight == 0.7  # adaptive fusion, chosen on the dev slices
    assert load_config(model="fast").bm25_weight == 0.8  # tuned for the static model
    assert load_config(model="fast", bm25_weight=0.5).bm25_weight == 0.5
    monkeypatch.setenv("KM_SEARCH_BM25_WEIGHT", "0.3")
    assert load_config(model="fast").bm25_weight == 0.3


def test_coverage_and_masks_follow_pids_in_any_order(seed_tokens):
    """Passage ids need not be sorted or dense (incremental builds append and delete): the
    position lookup behind coverage and filter masks maps each pid to its own row, checked
    against plain set membership; a pid the index lacks is ignored by masks and named by
    coverage."""
    rng = np.random.default_rng(3)
    pids = rng.permutation(np.arange(len(seed_tokens)) * 7 + 1000)  # shuffled, gaps of 7
    idx = BM25Index.build(seed_tokens, pids.tolist())
    q = tokenize("ปัจจัยความสำเร็จ ขอนแก่นศึกษา เครือข่าย")
    ask = rng.choice(pids, 25, replace=False)
    row = {int(p): i for i, p in enumerate(pids)}
    idf = idx.idf(q)
    want = [sum(w for t, w in idf.items() if t in set(seed_tokens[row[int(p)]])) / sum(idf.values())
            for p in ask]
    np.testing.assert_allclose(idx.coverage(q, ask), want, rtol=1e-6)
    assert len(set(np.round(want, 6))) > 2  # the passages differ in what they cover
    mask = idx.position_mask({int(ask[0]), int(ask[1]), 5})  # 5 is no passage's id
    assert np.flatnonzero(mask).tolist() == sorted([row[int(ask[0])], row[int(ask[1])]])
    got = idx.search(q, 5, mask)[0]
    assert set(got.tolist()) <= {int(ask[0]), int(ask[1])}
    with pytest.raises(KeyError, match="5"):
        idx.coverage(q, np.array([int(ask[0]), 5]))

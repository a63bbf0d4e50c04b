"""The per-process query-vector LRU: same vectors as no cache, one embedding per distinct
query, least recently used dropped first, and no stale vector across models."""
from __future__ import annotations

import threading

import numpy as np

from km_search.embed.fake import HashEmbedder
from km_search.embed.querycache import QueryVectorCache
from km_search.search import Searcher
from tests.conftest import fake_config


class CountingEmbedder(HashEmbedder):
    """The fake embedder, counting the query texts it embeds."""

    def __init__(self):
        super().__init__()
        self.asked: list[str] = []

    def encode_queries(self, texts):
        self.asked.extend(texts)
        return super().encode_queries(texts)


def test_lru_keeps_the_most_recently_used_and_drops_the_oldest():
    emb = HashEmbedder()
    calls: list[str] = []

    def compute(q):
        calls.append(q)
        return emb.encode_queries([q])[0]

    c = QueryVectorCache(2)
    a = c.get("m", "ขอนแก่นศึกษา", compute)
    c.get("m", "พังงา", compute)
    assert np.array_equal(c.get("m", "ขอนแก่นศึกษา", compute), a)  # hit: now most recent
    c.get("m", "PMQA 4.0", compute)  # evicts พังงา, the least recently used
    c.get("m", "ขอนแก่นศึกษา", compute)
    c.get("m", "พังงา", compute)
    assert calls == ["ขอนแก่นศึกษา", "พังงา", "PMQA 4.0", "พังงา"]
    assert c.stats() == {"size": 2, "capacity": 2, "hits": 2, "misses": 4}
    assert not c.get("m", "พังงา", compute).flags.writeable  # shared: read-only


def test_a_model_change_never_returns_the_other_models_vector():
    c = QueryVectorCache(8)
    v1 = c.get("model-a", "ปีงบประมาณ ๒๕๖๔", lambda q: np.ones(4, np.float32))
    v2 = c.get("model-b", "ปีงบประมาณ ๒๕๖๔", lambda q: np.zeros(4, np.float32))
    assert v1.sum() == 4 and v2.sum() == 0


def test_size_zero_is_off():
    calls = []
    c = QueryVectorCache(0)
    for _ in range(3):
        c.get("m", "q", lambda q: calls.append(q) or np.ones(2, np.float32))
    assert len(calls) == 3 and c.stats()["size"] == 0


def test_search_results_are_identical_with_and_without_the_cache(fake_seed_home):
    emb = CountingEmbedder()
    on = Searcher(fake_config(fake_seed_home, query_cache=64), emb)
    off = Searcher(fake_config(fake_seed_home, query_cache=0), HashEmbedder())
    queries = ["ปัจจัยความสำเร็จของขอนแก่นศึกษา", "success factors for Khon Kaen Study",
               "ปัจจัยความสำเร็จของขอนแก่นศึกษา", "สมัชชาพังงา\u200bการมีส่วนร่วม"]
    for q in queries:
        got = [(h.chunk_id, round(h.score, 6)) for h in on.search(q, k=5)]
        want = [(h.chunk_id, round(h.score, 6)) for h in off.search(q, k=5)]
        assert got == want and got
    # the repeated question was embedded once; bm25 mode embeds nothing
    on.search("ปัจจัยความสำเร็จของขอนแก่นศึกษา", k=5, mode="bm25")
    assert sorted(emb.asked) == sorted(set(emb.asked)) and len(emb.asked) == 3


def test_concurrent_misses_and_hits_give_each_thread_its_query_vector():
    emb = HashEmbedder()
    c = QueryVectorCache(3)  # smaller than the query set: evictions race with hits
    qs = [f"คำถามที่ {i} เรื่องการบริหารจัดการน้ำ" for i in range(6)]
    want = {q: emb.encode_queries([q])[0] for q in qs}
    bad: list[str] = []

    def work(seed: int) -> None:
        for n in range(200):
            q = qs[(seed * 7 + n) % len(qs)]
            if not np.array_equal(c.get(emb.fingerprint, q, lambda t: emb.encode_queries([t])[0]), want[q]):
                bad.append(q)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad and c.stats()["size"] <= 3

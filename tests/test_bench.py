"""CI's 10k smoke run of `km-search bench` (timings are reported, never asserted)."""
import numpy as np

from conftest import make_config
from km_search import bench


def test_bench_10k_smoke(seed_home, embedder):
    res = bench.run(make_config(seed_home), [10_000], data_dir=None, n_queries=20, repeats=1,
                    log=lambda m: None)
    (r,) = res["sizes"]
    assert res["base_passages"] > 5 and res["embed_passages_per_s"] > 0
    assert r["passages"] == 10_000 and r["dense_kind"] == "flat"
    assert r["bm25_disk_mb"] > 0 and r["dense_disk_mb"] > 10_000 * 384 * 4 / 1e6 * 0.9
    assert r["serving"]["rss_mb"] > 0 and r["serving"]["hybrid"]["p50_ms"] > 0
    for mode in ("bm25", "dense", "hybrid"):
        lat = r["latency_in_process"][mode]
        assert 0 < lat["p50_ms"] <= lat["p99_ms"]
    table = bench.format_table(res)
    assert "10,000" in table and "flat" in table


def test_ivf_recall_is_measured_against_exact(seed_home, embedder):
    cfg = make_config(seed_home, flat_limit=1000)
    base_vecs = np.random.default_rng(0).normal(size=(50, 384)).astype(np.float32)
    base_vecs /= np.linalg.norm(base_vecs, axis=1, keepdims=True)
    r = bench.bench_size(5000, [["ขอนแก่น", "ศึกษา"]] * 50, base_vecs, ["ขอนแก่น"] * 5,
                         base_vecs[:5], cfg, log=lambda m: None)
    assert r["dense_kind"] == "ivf-sq8" and 0.0 <= r["recall@10_vs_exact"] <= 1.0

"""CI runs of `km-search bench`: timings are reported, never asserted; what is asserted is
that each size becomes a real servable home, that the real server answers every request,
that it ranks as an in-process Searcher on the same home does, and that the home goes."""
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_config
from bench import serving as bench_http, speed as bench
from km_search.models import Chunk
from km_search.thai.dates import parse_thai_date
from km_search.thai.provinces import PROVINCES

pytestmark = pytest.mark.slow  # runs the benchmark

MODES = ("bm25", "dense", "hybrid")


def _assert_http_answered(h: dict, n_queries: int, levels: list[str]) -> None:
    """Every timed request of every mode and concurrency got a 200 with hits."""
    assert "error" not in h, h.get("error")
    assert h["startup_s"] > 0 and h["server"]["rss_mb"] > 0
    assert h["server"]["peak_rss_mb"] >= h["server"]["rss_mb"]
    for mode in MODES:
        assert list(h["load"][mode]) == levels
        for c, x in h["load"][mode].items():
            assert x["requests"] == n_queries and x["concurrency"] == int(c) and x["mode"] == mode
            assert x["errors"] == 0 and x["empty"] == 0, (mode, c, x)
            assert 0 < x["p50_ms"] <= x["p99_ms"] and x["req_per_s"] > 0
    assert h["query_cache"] == "off" and list(h["warm"]) == levels  # first-time + repeated
    for c, x in h["warm"].items():
        assert x["warmup"] == n_queries and x["errors"] == 0 and x["empty"] == 0


def test_bench_10k_smoke(seed_home, embedder):
    res = bench.run(make_config(seed_home), [10_000], data_dir=None, n_queries=20, repeats=1,
                    log=lambda m: None, http=[1])
    (r,) = res["sizes"]
    assert res["base_passages"] > 5 and res["embed_passages_per_s"] > 0
    assert "resampled" in res["corpus"]
    assert r["passages"] == 10_000 and r["dense_kind"] == "flat"
    assert r["bm25_disk_mb"] > 0 and r["dense_disk_mb"] > 10_000 * 384 * 4 / 1e6 * 0.9
    assert r["index_disk_mb"] > r["bm25_disk_mb"] + r["dense_disk_mb"] + r["passages_db_mb"] * 0.99
    assert r["serving"]["rss_mb"] > 0 and r["serving"]["hybrid"]["p50_ms"] > 0
    for mode in MODES:
        lat = r["latency_in_process"][mode]
        assert 0 < lat["p50_ms"] <= lat["p99_ms"]
    _assert_http_answered(r["http"], 20, ["1"])
    assert not r["home_kept"] and not Path(r["home"]).exists()  # cleaned up
    table = bench.format_table(res)
    assert "10,000" in table and "flat" in table and "resampled" in table
    assert "over HTTP" in table and "hybrid c=1" in table and "repeat c=1" in table


def _hits(searcher, q: str) -> list[list]:
    return [[h.chunk_id, h.doc_id] for h in searcher.search(q, k=10, mode="hybrid")]


def test_bench_http_serves_the_home_as_searcher_does(seed_home, embedder, tmp_path):
    """A kept 2k home: the server's hybrid ranking equals an in-process Searcher's, and
    passages.db holds real passages in documents whose metadata filters work."""
    from km_search.search import Filters, Searcher

    # in-flight bound 1 below the run's concurrency 2: the bench server must raise it, or
    # the c=2 run would count the server's 503s (load shedding) as errors
    cfg, keep = make_config(seed_home, max_inflight=1), tmp_path / "kept"
    queries = bench.bench_queries(None, 12)
    qvecs, _ = bench.embed_queries(embedder, queries)
    r = bench.bench_size(2_000, bench.load_base(cfg, None, 0, embedder), queries, qvecs, cfg,
                         log=lambda m: None, http=[1, 2], warmup=2, keep=keep)
    h = r["http"]
    _assert_http_answered(h, 12, ["1", "2"])
    home = keep / "2000"
    assert r["home_kept"] and Path(r["home"]) == home and (home / "index").is_symlink()

    searcher = Searcher(make_config(home), embedder, verify=True)
    assert searcher.manifest["counts"]["passages"] == 2_000
    assert len(h["sample_hits"]) == 3
    for s in h["sample_hits"]:
        assert len(s["hits"]) == 10
        assert s["hits"] == _hits(searcher, s["query"]), s["query"]

    real = {c.text: c.title for c in bench.base_passages(None, 0)}
    db = sqlite3.connect(searcher.build / "passages.db")
    rows = db.execute("SELECT pid, title, text, tokens FROM passages ORDER BY pid").fetchall()
    assert [x[0] for x in rows] == list(range(1, 2_001))
    assert all(real.get(text) == title for _, title, text, _ in rows)
    assert all(tok.endswith(f"\x1fb{pid - 1}") for pid, _, _, tok in rows)
    docs = db.execute("SELECT published, published_raw, provinces, publisher FROM docs").fetchall()
    assert 2_000 / 6 <= len(docs) <= 2_000
    for published, raw, provs, publisher in docs:
        assert parse_thai_date(raw) == published and "พ.ศ." in raw
        assert json.loads(provs)[0] in PROVINCES and publisher
    prov = json.loads(docs[0][2])[0]
    hits = searcher.search("ขอนแก่น", k=10, filters=Filters(province=prov))
    assert hits and all(x.provinces == [prov] for x in hits)

    with pytest.raises(ZeroDivisionError), bench_http.serving(make_config(home), home) as srv:
        1 / 0  # an error during the load still stops the server
    assert srv.proc.poll() is not None


def test_serving_an_unloadable_home_fails_with_the_servers_reason(tmp_path):
    home = tmp_path / "empty"
    home.mkdir()
    with pytest.raises(RuntimeError, match="not healthy.*no index"), \
            bench_http.serving(make_config(home), home, timeout=120):
        pass
    log = (home / "serve.log").read_text()
    # the server said why and stopped cleanly (a one-process server logs uvicorn's shutdown;
    # `serve --workers N` refuses before starting workers): no traceback either way
    assert "no index" in log and "Traceback" not in log


def _toy_base(embedder, n: int, seed: int, words: list[str]) -> bench.Base:
    """n random unit vectors with one short Thai passage each (enough to train an IVF)."""
    vecs = np.random.default_rng(seed).normal(size=(n, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return bench.Base([Chunk("", 0, f"{''.join(words)} {i}", "t") for i in range(n)],
                      [words] * n, vecs,
                      {"name": embedder.name, "dim": 384, "fingerprint": embedder.fingerprint})


def test_ivf_recall_is_measured_against_exact(seed_home, embedder):
    cfg = make_config(seed_home, flat_limit=1000)
    base = _toy_base(embedder, 50, 0, ["ขอนแก่น", "ศึกษา"])
    base_vecs = base.vecs
    r = bench.bench_size(5000, base, ["ขอนแก่น"] * 5, base_vecs[:5], cfg, log=lambda m: None,
                         http=[])
    # 5,000 noisy copies of 50 vectors: the 10 nearest of a query are its own copies, which
    # share its IVF list; SQ8 reorders near-ties among them, so recall is high but not exact
    assert r["dense_kind"] == "ivf-sq8" and 0.5 <= r["recall@10_vs_exact"] <= 1.0
    assert "http" not in r and not Path(r["home"]).exists()


def test_recall_vs_exact_measures_agreement_with_exact_search():
    """The recall figure compares with exact search: 1 for an exact index, 0 for one whose
    ids are wrong, and between for an IVF probing one list of many."""
    import faiss

    from km_search.retrieval import dense
    from km_search.retrieval.local import FaissVectors

    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(4000, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    q = vecs[:40] + rng.normal(0, 0.3, size=(40, 32)).astype(np.float32)
    ids = np.arange(1, 4001, dtype=np.int64)
    exact = faiss.IndexIDMap2(faiss.IndexFlatIP(32))
    exact.add_with_ids(vecs, ids)
    assert bench._recall_vs_exact(FaissVectors(exact), vecs, q) == 1.0
    shifted = faiss.IndexIDMap2(faiss.IndexFlatIP(32))
    shifted.add_with_ids(vecs, ids + 5000)  # right vectors, wrong passage ids
    assert bench._recall_vs_exact(FaissVectors(shifted), vecs, q) == 0.0
    ivf = dense.new_index(32, 4000, 100, vecs)
    ivf.add_with_ids(vecs, ids)
    ivf.nprobe = 1
    one_list = bench._recall_vs_exact(FaissVectors(ivf), vecs, q)
    ivf.nprobe = ivf.nlist
    all_lists = bench._recall_vs_exact(FaissVectors(ivf), vecs, q)
    assert 0.0 < one_list < all_lists and all_lists >= 0.9


def test_nprobe_setting_reaches_the_served_ivf_index(seed_home, embedder, tmp_path):
    import faiss

    from km_search.retrieval import dense
    from km_search.search import Searcher

    cfg = make_config(seed_home, flat_limit=1000)
    base = _toy_base(embedder, 40, 1, ["จังหวัด", "พังงา"])
    r = bench.bench_size(4000, base, ["พังงา"] * 3, base.vecs[:3], cfg, log=lambda m: None, http=[],
                         keep=tmp_path)
    home = Path(r["home"])
    auto = Searcher(make_config(home), embedder)
    ivf = faiss.extract_index_ivf(auto.vectors.index)
    assert ivf.nprobe == dense.auto_nprobe(ivf.nlist) != 5
    tuned = Searcher(make_config(home, nprobe=5), embedder)
    assert faiss.extract_index_ivf(tuned.vectors.index).nprobe == 5
    assert len(tuned.search("จังหวัดพังงา", k=5, mode="dense")) == 5

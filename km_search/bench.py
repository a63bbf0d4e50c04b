"""`km-search bench`: how the retrieval components grow, from 10k to 1M passages.

Corpora are REAL Thai passages (the iapp-wiki-qa contexts and the seed passages)
resampled with replacement to the requested size; each copy gets a unique marker word
so BM25 sees distinct documents. Encoding 1M passages on this CPU would take days, so
vectors are "precomputed": each base passage is embedded once with the real model
(through the embedding cache) and every copy gets that vector plus small Gaussian
jitter, renormalised. Recall of approximate indexes is measured against exact search
on the same vectors. Everything is timed with perf_counter; latencies are p50/p99 over
the query set, other figures are medians of repeats.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from km_search.settings import Config


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def base_passages(data_dir: Path | None, limit: int) -> list[str]:
    """Real passages: seed chunks first, then iapp contexts (if the data set is there)."""
    from corpus.seeds import bundled_seeds
    from km_search.chunking import chunk_document, passage_input

    texts = [passage_input(c) for d in bundled_seeds() for c in chunk_document(d)]
    if data_dir and (data_dir / "data.zip").exists():
        from km_search.evaluate import load_iapp

        data = load_iapp(data_dir)
        ctx = dict.fromkeys(r["context"] for sp in ("train", "valid", "test") for r in data[sp])
        texts += list(ctx)
    return texts[:limit] if limit else texts


def _pcts(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99))}


_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from km_search.bench import rss_mb, _pcts
from km_search.retrieval import dense
from km_search.retrieval.bm25 import BM25Index
from km_search.retrieval.fusion import fuse
from km_search.thai import tokenize
import faiss
folder, w, cand = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rss0 = rss_mb()
t1 = time.perf_counter()
bm = BM25Index.load(__import__("pathlib").Path(folder) / "bm25", mmap=True)
index = faiss.read_index(folder + "/vectors.faiss")
load_s = time.perf_counter() - t1
qs = json.load(open(folder + "/queries.json"))
qv = np.load(folder + "/qvecs.npy")
lat = []
for q, v in zip(qs, qv):
    t = time.perf_counter()
    fuse(bm.search(tokenize(q), cand), dense.search(index, v, cand), "wsum", w)
    lat.append((time.perf_counter() - t) * 1000)
print(json.dumps({"load_s": load_s, "rss_before_load_mb": rss0, "rss_mb": rss_mb(),
                  "hybrid": _pcts(lat)}))
"""


def _serving_probe(folder: Path, queries: list[str], qvecs: np.ndarray, cfg: Config) -> dict:
    """Load the saved BM25 (memory-mapped) and FAISS files in a fresh process, as a server
    would, and report start-up time, RSS and hybrid latency there (no embedding model)."""
    import subprocess
    import sys

    (folder / "queries.json").write_text(json.dumps(queries, ensure_ascii=False), encoding="utf-8")
    np.save(folder / "qvecs.npy", qvecs)
    out = subprocess.run([sys.executable, "-c", _PROBE, str(folder), str(cfg.bm25_weight),
                          str(cfg.candidates)], capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_size(n: int, base_tokens: list[list[str]], base_vecs: np.ndarray, queries: list[str],
               qvecs: np.ndarray, cfg: Config, log: Callable[[str], None]) -> dict:
    from km_search.retrieval import dense
    from km_search.retrieval.bm25 import BM25Index
    from km_search.retrieval.fusion import fuse
    from km_search.thai import tokenize

    import faiss

    rng = np.random.default_rng(n)
    pick = rng.integers(0, len(base_tokens), size=n)
    res: dict = {"passages": n, "rss_start_mb": rss_mb()}
    tokens = [base_tokens[i] + [f"b{j}"] for j, i in enumerate(pick)]
    vecs = base_vecs[pick] + rng.normal(0, 0.02, size=(n, base_vecs.shape[1])).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    pids = np.arange(1, n + 1, dtype=np.int64)

    t0 = time.perf_counter()
    bm = BM25Index.build(tokens, pids)
    res["bm25_build_s"] = time.perf_counter() - t0
    del tokens
    t0 = time.perf_counter()
    index = dense.new_index(vecs.shape[1], n, cfg.flat_limit, vecs)
    index.add_with_ids(vecs, pids)
    res["dense_build_s"] = time.perf_counter() - t0
    res["dense_kind"] = dense.kind(index)
    tmp = Path(tempfile.mkdtemp(prefix="kmbench"))
    try:
        bm.save(tmp / "bm25")
        faiss.write_index(index, str(tmp / "vectors.faiss"))
        res["bm25_disk_mb"] = _dir_mb(tmp / "bm25")
        res["dense_disk_mb"] = (tmp / "vectors.faiss").stat().st_size / 1e6
        res["serving"] = _serving_probe(tmp, queries, qvecs, cfg)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if res["dense_kind"] != "flat":  # recall@10 of the approximate index vs exact search
        exact = faiss.IndexFlatIP(vecs.shape[1])
        exact.add(vecs)
        _, gold = exact.search(qvecs, 10)
        _, got = index.search(qvecs, 10)
        res["recall@10_vs_exact"] = float(np.mean(
            [len(set(g) & set(h - 1)) / 10 for g, h in zip(gold, got)]))
        del exact
    del vecs
    res["rss_loaded_mb"] = rss_mb()

    qtok = [tokenize(q) for q in queries]
    lat: dict[str, list[float]] = {"bm25": [], "dense": [], "hybrid": []}
    for q, t, v in zip(queries, qtok, qvecs):
        t0 = time.perf_counter()
        b = bm.search(t, cfg.candidates)
        t1 = time.perf_counter()
        d = dense.search(index, v, cfg.candidates)
        t2 = time.perf_counter()
        fuse(b, d, cfg.fusion, cfg.bm25_weight)
        t3 = time.perf_counter()
        lat["bm25"].append((t1 - t0) * 1000)
        lat["dense"].append((t2 - t1) * 1000)
        lat["hybrid"].append((t3 - t0) * 1000)
    res["latency_in_process"] = {m: _pcts(x) for m, x in lat.items()}
    res["note"] = "dense/hybrid latency excludes query embedding (see query_embed_ms)"
    sv = res.get("serving", {})
    log(f"  {n:>9,} passages: bm25 build {res['bm25_build_s']:.1f}s, {res['dense_kind']} build "
        f"{res['dense_build_s']:.1f}s, hybrid p50 {res['latency_in_process']['hybrid']['p50_ms']:.2f} ms, "
        f"RSS {res['rss_loaded_mb']:.0f} MB; serving process: load {sv.get('load_s', float('nan')):.1f}s, "
        f"RSS {sv.get('rss_mb', float('nan')):.0f} MB")
    return res


def run(cfg: Config, sizes: list[int], data_dir: Path | None, n_queries: int = 200,
        repeats: int = 3, base_limit: int = 0, log: Callable[[str], None] = print) -> dict:
    from km_search.embed import get_embedder
    from km_search.embed.cache import EmbeddingCache
    from km_search.thai import tokenize

    base = base_passages(data_dir, base_limit)
    log(f"base: {len(base)} real passages (seeds + iapp contexts), resampled to each size")
    out: dict = {"base_passages": len(base), "cpu_count": os.cpu_count(), "sizes": []}
    sample = "".join(base[:400])
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        tokenize(sample)
        rates.append(len(sample) / (time.perf_counter() - t0))
    out["tokenise_chars_per_s"] = statistics.median(rates)
    base_tokens = [tokenize(t) for t in base]

    emb = get_embedder(cfg)
    cache = EmbeddingCache(cfg.cache_db)
    t0 = time.perf_counter()
    base_vecs = cache.encode(emb, base)
    out["base_embed_s_incl_cache"] = time.perf_counter() - t0
    cache.close()
    probe = base[:16]
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        emb.encode_passages(probe)
        rates.append(len(probe) / (time.perf_counter() - t0))
    out["embed_passages_per_s"] = statistics.median(rates)

    from km_search.evaluate import SEED_QUESTIONS

    queries = [json.loads(x)["question"] for x in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines()
               if x.strip()]
    if data_dir and (data_dir / "data.zip").exists():
        from km_search.evaluate import load_iapp

        queries += [r["question"] for r in load_iapp(data_dir)["test"]]
    queries = queries[:n_queries]
    times = []
    qvecs = np.zeros((len(queries), emb.dim), np.float32)
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        qvecs[i] = emb.encode_queries([q])[0]
        times.append((time.perf_counter() - t0) * 1000)
    out["query_embed_ms"] = _pcts(times)
    log(f"tokenise {out['tokenise_chars_per_s'] / 1e6:.2f} M chars/s; embed "
        f"{out['embed_passages_per_s']:.1f} passages/s; query embedding p50 "
        f"{out['query_embed_ms']['p50_ms']:.0f} ms")
    for n in sizes:
        out["sizes"].append(bench_size(n, base_tokens, base_vecs, queries, qvecs, cfg, log))
    return out


def _serve_cols(sv: dict) -> str:
    if "hybrid" not in sv:
        return f"{'-':>12} {'-':>12} {'-':>20}"
    h = sv["hybrid"]
    return (f"{sv['load_s']:>12.1f} {sv['rss_mb']:>12.0f} "
            f"{h['p50_ms']:.2f}/{h['p99_ms']:.2f}".rjust(20))


def format_table(res: dict) -> str:
    lines = [f"base {res['base_passages']} real passages; tokenise "
             f"{res['tokenise_chars_per_s'] / 1e6:.2f} M chars/s; embed {res['embed_passages_per_s']:.1f} "
             f"passages/s; query embedding p50 {res['query_embed_ms']['p50_ms']:.0f} ms "
             f"p99 {res['query_embed_ms']['p99_ms']:.0f} ms",
             f"{'passages':>10} {'dense':>7} {'bm25 s':>7} {'dense s':>8} {'bm25 MB':>8} {'vec MB':>7} "
             f"{'RSS MB':>7} {'recall':>6} {'bm25 p50/p99':>13} {'dense p50/p99':>14} {'hybrid p50/p99':>15} "
             f"{'serve load s':>12} {'serve RSS MB':>12} {'serve hybrid p50/p99':>20}"]
    for r in res["sizes"]:
        lat = r["latency_in_process"]
        f = lambda m: f"{lat[m]['p50_ms']:.2f}/{lat[m]['p99_ms']:.2f}"  # noqa: E731
        lines.append(f"{r['passages']:>10,} {r['dense_kind']:>7} {r['bm25_build_s']:>7.1f} "
                     f"{r['dense_build_s']:>8.1f} {r['bm25_disk_mb']:>8.1f} {r['dense_disk_mb']:>7.1f} "
                     f"{r['rss_loaded_mb']:>7.0f} {r.get('recall@10_vs_exact', 1.0):>6.3f} "
                     f"{f('bm25'):>13} {f('dense'):>14} {f('hybrid'):>15} "
                     + _serve_cols(r.get("serving", {})))
    lines.append("serve = a fresh process loading the saved files (BM25 memory-mapped), without "
                 "the embedding model")
    lines.append("latencies in ms, in-process, query embedding excluded (add query_embed_ms for "
                 "dense/hybrid end to end)")
    return "\n".join(lines)

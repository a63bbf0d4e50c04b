"""`km-search bench`: how the retrieval components grow, from 10k to 1M passages.

Corpora are REAL Thai passages (the seed passages and the iapp-wiki-qa contexts, each
with its title) resampled with replacement to the requested size; each copy gets a unique
marker word so BM25 sees distinct documents. Encoding 1M passages on this CPU would take
days, so each base passage is embedded once with the real model (through the embedding
cache) and every copy gets that vector plus small Gaussian jitter, renormalised. Recall
of approximate indexes is measured against exact search on the same vectors. Latencies
are p50/p99 over the query set, other figures medians of repeats. Each size is also
written as a real, servable home and timed over HTTP through `km-search serve` (see
bench.serving); the home is deleted unless ``keep`` is set.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import serving as bench_http
from bench.evaluate import SEED_QUESTIONS, load_iapp
from corpus.seeds import bundled_seeds
from km_search import indexdir
from km_search.chunking import chunk_document, passage_input
from km_search.embed import get_embedder
from km_search.embed.cache import EmbeddingCache
from km_search.models import Chunk
from km_search.retrieval.backend import LexicalIndex, VectorIndex, get_backend
from km_search.retrieval.fusion import fuse
from km_search.settings import Config
from km_search.thai import tokenize
from km_search.thai.ngrams import index_ngrams, thai_ngrams, with_ngrams


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(reset: bool = False) -> float:
    """This process's peak resident memory (VmHWM) in MB; ``reset`` starts a new peak
    from the current RSS (Linux: /proc/self/clear_refs), so each corpus size's build
    peak is its own, not the largest so far."""
    if reset:
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            pass
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def base_passages(data_dir: Path | None, limit: int) -> list[Chunk]:
    """Real passages with their titles: seed chunks first, then the iapp contexts (whole,
    under their article title) if the data set is there."""
    chunks = [c for d in bundled_seeds() for c in chunk_document(d)]
    if data_dir and (data_dir / "data.zip").exists():
        data = load_iapp(data_dir)
        ctx: dict[str, str] = {}
        for sp in ("train", "valid", "test"):
            for r in data[sp]:
                ctx.setdefault(r["context"], r["title"])
        chunks += [Chunk("", 0, text, title) for text, title in ctx.items()]
    return chunks[:limit] if limit else chunks


@dataclass
class Base:
    """What every size resamples: real passages, their BM25 tokens and vectors (of
    passage_input, as the indexer embeds them), and the embedder that made the vectors."""

    chunks: list[Chunk]
    tokens: list[list[str]]
    vecs: np.ndarray
    model: dict  # name, dim, fingerprint, setting: written to each home's manifest


def _pcts(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99))}


_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from bench.speed import rss_mb, _pcts
from pathlib import Path
from km_search import indexdir
from km_search.retrieval.backend import get_backend
from km_search.retrieval.fusion import fuse
from km_search.settings import load_config
from km_search.thai import tokenize
from km_search.thai.ngrams import with_ngrams
folder, qdir, w, cand = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
cfg = load_config(home=sys.argv[5])
man = indexdir.read_manifest(folder)
ngrams = man["tokenizer"].get("ngrams", 0)
backend = get_backend(indexdir.backend_of(man))
rss0 = rss_mb()
t1 = time.perf_counter()
bm = backend.load_lexical(folder, cfg, man, None)
index = backend.load_vectors(folder, cfg, man, None, readonly=True)
load_s = time.perf_counter() - t1
qs = json.load(open(qdir + "/queries.json"))
qv = np.load(qdir + "/qvecs.npy")
lat = []
for q, v in zip(qs, qv):
    t = time.perf_counter()
    fuse(bm.search(with_ngrams(tokenize(q), ngrams), cand), index.search(v, cand), "wsum", w)
    lat.append((time.perf_counter() - t) * 1000)
print(json.dumps({"load_s": load_s, "rss_before_load_mb": rss0, "rss_mb": rss_mb(),
                  "hybrid": _pcts(lat)}))
"""


def _serving_probe(build: Path, queries: list[str], qvecs: np.ndarray, cfg: Config) -> dict:
    """Load the saved lexical and vector indexes (local backend: memory-mapped BM25 and the
    FAISS file) in a fresh process through the backend interface, as a server would, and report start-up time, RSS and hybrid latency there (no embedding model):
    the retrieval floor under the HTTP figures."""
    import subprocess
    import sys

    qdir = Path(tempfile.mkdtemp(prefix="kmbench-q"))
    try:
        (qdir / "queries.json").write_text(json.dumps(queries, ensure_ascii=False), encoding="utf-8")
        np.save(qdir / "qvecs.npy", qvecs)
        out = subprocess.run([sys.executable, "-c", _PROBE, str(build), str(qdir),
                              str(cfg.bm25_weight), str(cfg.candidates), str(build.parent.parent)],
                             capture_output=True, text=True, timeout=1800, check=False)
    finally:
        shutil.rmtree(qdir, ignore_errors=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _recall_vs_exact(index: VectorIndex, vecs: np.ndarray, qvecs: np.ndarray) -> float:
    """recall@10 of a vector index (through the backend interface) against exact inner
    product over the same vectors, computed here in numpy (ids are row + 1)."""
    gold = np.argsort(-(qvecs @ vecs.T), axis=1, kind="stable")[:, :10]
    got = [index.search(q, 10)[0] for q in qvecs]
    return float(np.mean([len(set(g.tolist()) & set((h - 1).tolist())) / 10
                          for g, h in zip(gold, got)]))


def _in_process_latency(bm: LexicalIndex, index: VectorIndex, queries: list[str], qvecs: np.ndarray, cfg: Config,
                        ngrams: int = 0) -> dict:
    """p50/p99 of BM25, dense and fused retrieval in this process, query vectors given:
    the cost of retrieval alone, without HTTP, snippets or query embedding."""
    qtok = [with_ngrams(tokenize(q), ngrams) for q in queries]
    lat: dict[str, list[float]] = {"bm25": [], "dense": [], "hybrid": []}
    for t, v in zip(qtok, qvecs):
        t0 = time.perf_counter()
        b = bm.search(t, cfg.candidates)
        t1 = time.perf_counter()
        d = index.search(v, cfg.candidates)
        t2 = time.perf_counter()
        fuse(b, d, cfg.fusion, cfg.bm25_weight)
        t3 = time.perf_counter()
        lat["bm25"].append((t1 - t0) * 1000)
        lat["dense"].append((t2 - t1) * 1000)
        lat["hybrid"].append((t3 - t0) * 1000)
    return {m: _pcts(x) for m, x in lat.items()}


def bench_size(n: int, base: Base, queries: list[str], qvecs: np.ndarray, cfg: Config,
               log: Callable[[str], None], http: Sequence[int] = (1, 4), warmup: int = 5,
               keep: Path | None = None) -> dict:
    """One corpus size: write the passages of a servable home, build the configured
    backend's lexical and vector indexes in-process (timed) and publish the home, then time
    retrieval in-process, in a bare loading process and, unless ``http`` (the concurrency
    levels) is empty, over HTTP. The home goes unless ``keep``."""
    rng = np.random.default_rng(n)
    pick = rng.integers(0, len(base.tokens), size=n)
    res: dict = {"passages": n, "rss_start_mb": rss_mb(), "peak_reset_mb": peak_rss_mb(reset=True)}
    pids = np.arange(1, n + 1, dtype=np.int64)

    backend = get_backend(cfg.backend)
    home = keep / str(n) if keep else Path(tempfile.mkdtemp(prefix=f"kmbench-{n}-"))
    res["home"], res["home_kept"], res["backend"] = str(home), keep is not None, backend.name
    try:
        t0 = time.perf_counter()
        build, fields = bench_http.start_home(home, base.chunks, base.tokens, pick, cfg, seed=n,
                                              fields=backend.filters_natively)
        res["home_write_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        bm = backend.build_lexical(build, cfg, pids, _copies(base, pick, index_ngrams(cfg, n)), fields)
        res["bm25_build_s"] = time.perf_counter() - t0
        saved = backend.name == "local"
        if saved:  # written now and reopened memory-mapped, as a server reads it: the vector
            bm.save(build)  # build below then does not sit on the BM25 arrays too (~1 GB at 1M)
            del bm
            bm = backend.load_lexical(build, cfg, {}, None)
        vecs = _jittered(base, pick, rng)
        t0 = time.perf_counter()
        index = backend.new_vectors(build, cfg, vecs.shape[1], n, vecs)
        index.add(pids, vecs, fields)
        res["dense_build_s"] = time.perf_counter() - t0
        res["dense_kind"] = index.describe()["kind"]
        t0 = time.perf_counter()
        build = bench_http.finish_home(home, build, backend, bm, index, base.model, cfg,
                                       len(base.chunks), lexical_saved=saved)
        res["home_write_s"] += time.perf_counter() - t0
        # whole process, base passages and model included: passages.db, BM25, vectors
        res["build_peak_rss_mb"] = peak_rss_mb()
        res["bm25_disk_mb"] = _dir_mb(build / indexdir.BM25) if (build / indexdir.BM25).exists() else 0.0
        res["dense_disk_mb"] = ((build / indexdir.VECTORS).stat().st_size / 1e6
                                if (build / indexdir.VECTORS).exists() else 0.0)
        res["passages_db_mb"] = (build / indexdir.PASSAGES).stat().st_size / 1e6
        res["index_disk_mb"] = _dir_mb(build)
        res["serving"] = _serving_probe(build, queries, qvecs, cfg)
        if res["dense_kind"] not in ("flat", "milvus-flat"):
            res["recall@10_vs_exact"] = _recall_vs_exact(index, vecs, qvecs)
        del vecs
        res["rss_loaded_mb"] = rss_mb()
        res["latency_in_process"] = _in_process_latency(bm, index, queries, qvecs, cfg,
                                                        index_ngrams(cfg, n))
        res["note"] = "dense/hybrid latency excludes query embedding (see query_embed_ms)"
        del bm, index  # the server loads its own copy; don't hold two during the load
        _log_size(res, log)
        if http:
            try:
                res["http"] = bench_http.http_bench(cfg, home, queries, http, warmup, log=log)
            except Exception as e:  # noqa: BLE001 - a failed server must not lose the other figures
                res["http"] = {"error": f"{type(e).__name__}: {e}"}
                log(f"    HTTP part failed: {res['http']['error']}")
    finally:
        if keep is None:
            shutil.rmtree(home, ignore_errors=True)
    return res


DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "iapp-wiki-qa"


def resampled_home(cfg: Config, n: int, home: Path, data_dir: Path | None = None) -> Path:
    """A servable home of ``n`` passages resampled exactly as :func:`bench_size` does
    (same seed: the same passages, tokens and vectors), for a load test to serve. A home
    already holding a live build is reused as it is. Returns ``home``."""
    if indexdir.live_build(home) is not None:
        return home
    data_dir = data_dir or (DATA_DIR if DATA_DIR.exists() else None)
    base = load_base(cfg, data_dir, 0, get_embedder(cfg))
    rng = np.random.default_rng(n)
    pick = rng.integers(0, len(base.tokens), size=n)
    pids = np.arange(1, n + 1, dtype=np.int64)
    backend = get_backend(cfg.backend)
    build, fields = bench_http.start_home(home, base.chunks, base.tokens, pick, cfg, seed=n,
                                          fields=backend.filters_natively)
    bm = backend.build_lexical(build, cfg, pids, _copies(base, pick, index_ngrams(cfg, n)), fields)
    vecs = _jittered(base, pick, rng)
    index = backend.new_vectors(build, cfg, vecs.shape[1], n, vecs)
    index.add(pids, vecs, fields)
    bench_http.finish_home(home, build, backend, bm, index, base.model, cfg, len(base.chunks))
    return home


def _copies(base: Base, pick: np.ndarray, ngrams: int = 0):
    """The resampled passages' BM25 tokens, generated one at a time: the streamed BM25
    build never needs them all at once (holding them made the 1M build peak at 6-11 GB).
    With ``ngrams`` each copy also gets its base passage's Thai character n-grams (made
    once per base passage; the copy's marker word is Latin, so it adds none)."""
    if not ngrams:
        return (bench_http.copy_tokens(base.tokens[i], j) for j, i in enumerate(pick.tolist()))
    grams = [thai_ngrams(t, ngrams) for t in base.tokens]
    return (bench_http.copy_tokens(base.tokens[i], j) + grams[i] for j, i in enumerate(pick.tolist()))


def _jittered(base: Base, pick: np.ndarray, rng: np.random.Generator,
              block: int = 1 << 16) -> np.ndarray:
    """Each copy's vector: its base passage's plus small Gaussian jitter, renormalised.
    Made in blocks of rows (the same numbers as one call: the generator draws in order):
    the float64 jitter and the norm's temporaries of all 1M rows at once were 6 GB of the
    1M bench's peak."""
    vecs = base.vecs[pick]
    for s in range(0, len(vecs), block):
        part = vecs[s:s + block]
        part += rng.normal(0, 0.02, size=part.shape).astype(np.float32)
        part /= np.linalg.norm(part, axis=1, keepdims=True)
    return vecs


def _log_size(res: dict, log: Callable[[str], None]) -> None:
    sv = res.get("serving", {})
    log(f"  {res['passages']:>9,} passages: bm25 build {res['bm25_build_s']:.1f}s, {res['dense_kind']} "
        f"build {res['dense_build_s']:.1f}s, home written in {res['home_write_s']:.1f}s "
        f"({res['index_disk_mb']:.0f} MB), hybrid p50 "
        f"{res['latency_in_process']['hybrid']['p50_ms']:.2f} ms, RSS {res['rss_loaded_mb']:.0f} MB; "
        f"serving process: load {sv.get('load_s', float('nan')):.1f}s, "
        f"RSS {sv.get('rss_mb', float('nan')):.0f} MB")


def load_base(cfg: Config, data_dir: Path | None, base_limit: int, emb) -> Base:
    """Base passages, tokenised and embedded (through the embedding cache, so only a first
    run pays for the embedding) exactly as the indexer does: title + passage."""
    chunks = base_passages(data_dir, base_limit)
    inputs = [passage_input(c) for c in chunks]
    cache = EmbeddingCache(cfg.cache_db)
    try:
        vecs = cache.encode(emb, inputs)
    finally:
        cache.close()
    model = {"name": emb.name, "dim": emb.dim, "fingerprint": emb.fingerprint, "setting": cfg.model}
    return Base(chunks, [tokenize(t) for t in inputs], vecs, model)


def _rates(base: Base, emb, repeats: int) -> dict:
    """Tokenising (chars/s) and passage-embedding (passages/s) throughput, medians."""
    inputs = [passage_input(c) for c in base.chunks[:400]]
    sample, probe = "".join(inputs), inputs[:16]
    tok, enc = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        tokenize(sample)
        t1 = time.perf_counter()
        emb.encode_passages(probe)
        tok.append(len(sample) / (t1 - t0))
        enc.append(len(probe) / (time.perf_counter() - t1))
    return {"tokenise_chars_per_s": statistics.median(tok),
            "embed_passages_per_s": statistics.median(enc)}


def embed_queries(emb, queries: list[str]) -> tuple[np.ndarray, dict]:
    """Query vectors, one query at a time as the server embeds them, and p50/p99 ms."""
    times = []
    qvecs = np.zeros((len(queries), emb.dim), np.float32)
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        qvecs[i] = emb.encode_queries([q])[0]
        times.append((time.perf_counter() - t0) * 1000)
    return qvecs, _pcts(times)


def bench_queries(data_dir: Path | None, n: int) -> list[str]:
    """The seed questions, then the iapp test questions: the same set in-process and over HTTP."""
    queries = [json.loads(x)["question"] for x in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines()
               if x.strip()]
    if data_dir and (data_dir / "data.zip").exists():
        queries += [r["question"] for r in load_iapp(data_dir)["test"]]
    return queries[:n]


def run(cfg: Config, sizes: list[int], data_dir: Path | None, n_queries: int = 200,
        repeats: int = 3, base_limit: int = 0, log: Callable[[str], None] = print,
        http: Sequence[int] = (1, 4), warmup: int = 5, keep: Path | None = None) -> dict:
    """The whole benchmark; ``http`` = concurrency levels of the HTTP load (empty: none),
    ``keep`` = folder to keep each size's home in (as ``keep/<size>``)."""
    out: dict = {"corpus": "real Thai passages (seeds + iapp-wiki-qa contexts) resampled with "
                           "replacement to each size; vectors = real model + jitter",
                 "cpu_count": os.cpu_count(), "sizes": []}
    emb = get_embedder(cfg)
    t0 = time.perf_counter()
    base = load_base(cfg, data_dir, base_limit, emb)
    out["base_tokenise_embed_s_incl_cache"] = time.perf_counter() - t0
    out["base_passages"] = len(base.chunks)
    log(f"base: {len(base.chunks)} real Thai passages (seeds + iapp contexts, with titles), "
        "resampled with replacement to each size")
    out.update(_rates(base, emb, repeats))
    queries = bench_queries(data_dir, n_queries)
    qvecs, out["query_embed_ms"] = embed_queries(emb, queries)
    log(f"tokenise {out['tokenise_chars_per_s'] / 1e6:.2f} M chars/s; embed "
        f"{out['embed_passages_per_s']:.1f} passages/s; query embedding p50 "
        f"{out['query_embed_ms']['p50_ms']:.0f} ms")
    for n in sizes:
        out["sizes"].append(bench_size(n, base, queries, qvecs, cfg, log, http, warmup, keep))
    return out


def _serve_cols(sv: dict) -> str:
    if "hybrid" not in sv:
        return f"{'-':>12} {'-':>12} {'-':>20}"
    h = sv["hybrid"]
    return (f"{sv['load_s']:>12.1f} {sv['rss_mb']:>12.0f} "
            f"{h['p50_ms']:.2f}/{h['p99_ms']:.2f}".rjust(20))


def format_table(res: dict) -> str:
    """The in-process table, then the HTTP one (if the run had an HTTP part)."""
    lines = [f"corpus: {res['corpus']}",
             (f"base {res['base_passages']} real passages; tokenise "
              f"{res['tokenise_chars_per_s'] / 1e6:.2f} M chars/s; embed {res['embed_passages_per_s']:.1f} "
              f"passages/s; query embedding p50 {res['query_embed_ms']['p50_ms']:.0f} ms "
              f"p99 {res['query_embed_ms']['p99_ms']:.0f} ms"),
             (f"{'passages':>10} {'dense':>7} {'bm25 s':>7} {'dense s':>8} {'bm25 MB':>8} {'vec MB':>7} "
              f"{'index MB':>8} {'RSS MB':>7} {'peak MB':>7} {'recall':>6} {'bm25 p50/p99':>13} {'dense p50/p99':>14} "
              f"{'hybrid p50/p99':>15} {'serve load s':>12} {'serve RSS MB':>12} "
              f"{'serve hybrid p50/p99':>20}")]
    for r in res["sizes"]:
        lat = r["latency_in_process"]

        def f(m: str, lat: dict = lat) -> str:
            return f"{lat[m]['p50_ms']:.2f}/{lat[m]['p99_ms']:.2f}"
        lines.append(f"{r['passages']:>10,} {r['dense_kind']:>7} {r['bm25_build_s']:>7.1f} "
                     f"{r['dense_build_s']:>8.1f} {r['bm25_disk_mb']:>8.1f} {r['dense_disk_mb']:>7.1f} "
                     f"{r['index_disk_mb']:>8.0f} {r['rss_loaded_mb']:>7.0f} "
                     f"{r.get('build_peak_rss_mb', float('nan')):>7.0f} "
                     f"{r.get('recall@10_vs_exact', 1.0):>6.3f} "
                     f"{f('bm25'):>13} {f('dense'):>14} {f('hybrid'):>15} "
                     + _serve_cols(r.get("serving", {})))
    lines.append("index MB = the whole build folder (passages.db with text and tokens, BM25, "
                 "vectors); RSS = the bench process after the build; peak = its VmHWM during this "
                 "size's build (base passages and model included); serve = a fresh process "
                 "loading the saved files (BM25 memory-mapped), without the embedding model")
    lines.append("latencies in ms, in-process, query embedding excluded (add query_embed_ms for "
                 "dense/hybrid end to end)")
    http = bench_http.format_http_table(res)
    return "\n".join(lines) + ("\n\n" + http if http else "")

"""`km-search bench` over HTTP: each corpus size as a real home, served by `km-search serve`.

The resampled passages of one size are written as an ordinary km-search home with the
product's own writers: passages.db (every passage's real text, title and tokens, grouped
into documents with a publisher, a province and a date, so filters, facets and snippets
work), the very BM25 and FAISS objects the in-process part timed, and a manifest naming
the configured embedder. `km-search serve` then loads it in a subprocess (Searcher, as
in production) and embeds every query itself with the real model, and bench.loadtest
drives a bounded load at it from 127.0.0.1. The home is deleted afterwards unless kept.
"""
from __future__ import annotations

import dataclasses

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from bench import loadtest
from bench.loadtest import free_port
from km_search import indexdir
from km_search import passages as P
from km_search.models import Chunk, Document
from km_search.retrieval.backend import Backend, LexicalIndex, VectorIndex
from km_search.settings import Config
from km_search.thai.dates import thai_date
from km_search.thai.ngrams import index_ngrams
from km_search.thai.provinces import PROVINCES
from km_search.thai.tokenize import engine_name

MODES = ("bm25", "dense", "hybrid")
DOC_PASSAGES = (1, 6)  # each bench document holds this many resampled passages (inclusive)
_PUBLISHERS = ("สำนักงาน ก.พ.ร.", "กรมการพัฒนาชุมชน", "กรมส่งเสริมการปกครองท้องถิ่น",
               "กระทรวงสาธารณสุข", "สำนักงานสถิติแห่งชาติ", "สำนักงานจังหวัด{province}")


def copy_tokens(tokens: list[str], j: int) -> list[str]:
    """Tokens of the j-th resampled copy: its base passage's plus a unique marker word, so
    BM25 sees distinct documents. The in-process index and passages.db must agree."""
    return tokens + [f"b{j}"]


def _documents(pick: np.ndarray, titles: Sequence[str], seed: int
               ) -> Iterator[tuple[Document, range]]:
    """Runs of consecutive copies as one document each, with plausible metadata (publisher,
    province, ISO C.E. date and its Thai B.E. form), so filters behave as on a crawl.
    Metadata is drawn in vectorised blocks: per-document RNG calls cost seconds at 1M."""
    n = len(pick)
    rng = np.random.default_rng(seed)
    sizes = rng.integers(DOC_PASSAGES[0], DOC_PASSAGES[1] + 1, n)
    provs = rng.integers(0, len(PROVINCES), n)
    pubs = rng.integers(0, len(_PUBLISHERS), n)
    days = rng.integers(0, 10 * 365, n)  # 2015-2024
    j = d = 0
    while j < n:
        span = range(j, min(n, j + int(sizes[d])))
        prov = PROVINCES[provs[d]]
        day = date(2015, 1, 1) + timedelta(days=int(days[d]))
        yield Document(doc_id=f"bench-{d:07d}", title=titles[pick[j]], body="", hash=f"bench-{d}",
                       publisher=_PUBLISHERS[pubs[d]].format(province=prov), provinces=[prov],
                       published=day.isoformat(), published_raw=thai_date(day.isoformat()),
                       source="bench", fetched_at=""), span
        j, d = span.stop, d + 1


def write_passages(path: Path, chunks: Sequence[Chunk], tokens: Sequence[list[str]],
                   pick: np.ndarray, seed: int) -> int:
    """passages.db of the resampled corpus, pid = copy index + 1 (as in the BM25/FAISS ids),
    streamed through km_search.passages.add_doc one document at a time so no second copy of
    the 1M texts or token lists is ever held. Returns the number of documents."""
    db = P.open_db(path)
    try:
        from km_search.lessons.facets import text_facets

        pid, ndocs = 1, 0
        facets: dict[int, dict] = {}  # per base passage: a copy's text is its base's
        for doc, span in _documents(pick, [c.title for c in chunks], seed):
            cs, toks, fs, off = [], [], [], 0
            for j in span:
                c = chunks[pick[j]]
                cs.append(Chunk(doc.doc_id, len(cs), c.text, c.title, off, off + len(c.text)))
                off += len(c.text) + 2  # as if the document's passages were joined by "\n\n"
                toks.append(copy_tokens(tokens[pick[j]], j))
                if int(pick[j]) not in facets:
                    facets[int(pick[j])] = text_facets(c.title, c.text)
                fs.append(facets[int(pick[j])])
            pid += len(P.add_doc(db, doc, cs, toks, pid, fs))
            ndocs += 1
            if ndocs % 20_000 == 0:
                db.commit()
        db.commit()
        if pid - 1 != len(pick):
            raise RuntimeError(f"wrote {pid - 1} passages for {len(pick)} BM25/FAISS ids")
        return ndocs
    finally:
        db.close()


def start_home(home: Path, chunks: Sequence[Chunk], tokens: Sequence[list[str]],
               pick: np.ndarray, cfg: Config, seed: int,
               fields: bool = False) -> tuple[Path, list[dict] | None]:
    """A new build folder in ``home`` holding the resampled corpus's passages.db, and each
    passage's filter fields when the backend stores them (``fields``)."""
    home.mkdir(parents=True, exist_ok=True)
    build = indexdir.new_build_dir(home)
    try:
        write_passages(build / indexdir.PASSAGES, chunks, tokens, pick, seed)
        if not fields:
            return build, None
        db = P.open_db(build / indexdir.PASSAGES, readonly=True)
        try:
            return build, P.scalar_fields(db, list(range(1, len(pick) + 1)))
        finally:
            db.close()
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise


def finish_home(home: Path, build: Path, backend: Backend, lexical: LexicalIndex,
                vectors: VectorIndex, model: dict, cfg: Config, base_passages: int,
                lexical_saved: bool = False) -> Path:
    """Save the in-process indexes (ids 1..n: the server loads what was timed), checksum
    and publish the build with indexdir as a real build is. Returns the live build.
    ``lexical_saved``: the lexical index was already written there (and may be read from
    those files, memory-mapped: they are not written again)."""
    try:
        if not lexical_saved:
            lexical.save(build)
        vectors.save(build)
        described, n = vectors.describe(), lexical.count()
        if backend.finish is not None:
            backend.finish(build, cfg, sorted(indexdir.builds_dir(home).iterdir()))
        db = P.open_db(build / indexdir.PASSAGES, readonly=True)
        ndocs = db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
        db.close()
        indexdir.write_manifest(build, {
            "model": model, "tokenizer": {"engine": engine_name(), "library": "pythainlp",
                                        "ngrams": index_ngrams(cfg, n)},
            "chunking": {"target_words": cfg.chunk_tokens, "overlap": cfg.chunk_overlap},
            "backend": backend.name, "dense": described,
            "counts": {"documents": ndocs, "passages": n},
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "bench": {"note": "real Thai passages resampled with replacement (km-search bench)",
                      "base_passages": base_passages}})
        return indexdir.publish(home, build)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise


# -- the server ------------------------------------------------------------------------
@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    startup_s: float


def _server_env(cfg: Config, home: Path) -> dict[str, str]:
    """The bench's resolved settings as KM_SEARCH_* variables, so the server searches with
    exactly the same candidates, fusion and model (from the same models folder)."""
    env = dict(os.environ)
    for name, value in cfg.values.items():
        if value is not None:
            env["KM_SEARCH_" + name.upper()] = str(value)
    env.update(KM_SEARCH_HOME=str(home), KM_SEARCH_MODELS_DIR=str(cfg.models_dir),
               KM_SEARCH_SERVE_HOST="127.0.0.1", PYTHONIOENCODING="utf-8")
    return env


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_ready(proc: subprocess.Popen, url: str, timeout: float, log_path: Path) -> None:
    """Poll /health until the index is loaded and the model warm; fail with the server's
    own log if it exits, times out, or loads with a warning (e.g. a model mismatch)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"km-search serve exited ({proc.returncode}):\n{_log_tail(log_path)}")
        try:
            r = httpx.get(url + "/health", timeout=5)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        body = r.json()
        if r.status_code == 200 and not body.get("warning"):
            return
        raise RuntimeError(f"km-search serve is not healthy: {body}\n{_log_tail(log_path)}")
    raise RuntimeError(f"km-search serve did not answer /health in {timeout:.0f}s:\n"
                       f"{_log_tail(log_path)}")


def _stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Terminate (uvicorn shuts down cleanly on SIGTERM), kill if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def serving(cfg: Config, home: Path, timeout: float = 900) -> Iterator[Server]:
    """`km-search serve` on ``home`` at a free 127.0.0.1 port, stopped on exit even on
    errors. start-up time runs from launching the process to the first healthy answer."""
    port, log_path = free_port(), home / "serve.log"
    t0 = time.perf_counter()
    with open(log_path, "wb") as logf:  # a file, not a pipe: the access log never blocks it
        # one worker: the latency table and its RSS are of one server process (the
        # default, one worker per core, would measure the supervisor's RSS)
        proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--home", str(home),
                                 "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                                env=_server_env(cfg, home), stdout=logf, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(proc, url, timeout, log_path)
        yield Server(proc, url, time.perf_counter() - t0)
    finally:
        _stop(proc)


def proc_memory_mb(pid: int) -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory of a process, in MB."""
    names, out = {"VmRSS": "rss_mb", "VmHWM": "peak_rss_mb"}, {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in names:
                out[names[key]] = int(rest.split()[0]) / 1024
    return out


def sample_hits(url: str, queries: Sequence[str], mode: str = "hybrid", k: int = 10) -> list[dict]:
    """(chunk_id, doc_id) of the server's top hits per query: what a test compares with an
    in-process Searcher on the same home."""
    import httpx

    out = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for q in queries:
            r = client.get("/search", params={"q": q, "k": k, "mode": mode})
            r.raise_for_status()
            out.append({"query": q, "mode": mode,
                        "hits": [[h["chunk_id"], h["doc_id"]] for h in r.json()["hits"]]})
    return out


def http_bench(cfg: Config, home: Path, queries: list[str], concurrency: Sequence[int],
               warmup: int = 5, n_sample: int = 3, log: Callable[[str], None] = print) -> dict:
    """Serve ``home`` and time /search per mode and concurrency (each run after its own
    warm-up requests), then read the server's RSS: after the load, when it is largest.

    The table is of first-time questions: the server runs with the query-vector cache
    off, so every request embeds its query (otherwise the dense run would fill the cache
    and the hybrid run would measure hits). ``warm`` is a second server with the default
    cache, asked every question once untimed and then timed again: repeated questions."""
    # as many requests in flight as the most concurrent run sends: this times latency
    # under concurrency, not shedding (the load test's --soak measures that)
    inflight = max(max(concurrency, default=1), cfg.max_inflight)
    with serving(dataclasses.replace(cfg, query_cache=0, max_inflight=inflight), home) as srv:
        out: dict = {"startup_s": srv.startup_s, "requests_per_run": len(queries),
                     "warmup_per_run": warmup, "query_cache": "off", "load": {}}
        for mode in MODES:
            for c in concurrency:
                out["load"].setdefault(mode, {})[str(c)] = loadtest.run(
                    srv.url, len(queries), c, mode, queries=queries, warmup=warmup)
        out["server"] = proc_memory_mb(srv.proc.pid)
        out["sample_hits"] = sample_hits(srv.url, queries[:n_sample])
    warm_cfg = dataclasses.replace(cfg, query_cache=cfg.query_cache or 4096, max_inflight=inflight)
    with serving(warm_cfg, home) as srv:
        out["warm"] = {str(c): loadtest.run(srv.url, len(queries), c, "hybrid", queries=queries,
                                            warmup=len(queries)) for c in concurrency}
    h = out["load"]["hybrid"][str(concurrency[0])]
    w = out["warm"][str(concurrency[0])]
    log(f"    HTTP: start-up {out['startup_s']:.1f}s, server RSS {out['server']['rss_mb']:.0f} MB, "
        f"hybrid c={concurrency[0]} p50 {h['p50_ms']} ms p99 {h['p99_ms']} ms "
        f"(repeated questions: p50 {w['p50_ms']} ms p99 {w['p99_ms']} ms)")
    return out


def format_http_table(res: dict) -> str:
    """The HTTP table: start-up, server RSS, and p50/p99 (requests/s) per mode and
    concurrency; a size whose HTTP part failed gets its error instead; empty without HTTP."""
    rows = [r for r in res["sizes"] if "http" in r]
    ok = [r["http"] for r in rows if "error" not in r["http"]]
    lines, cols = [], []
    if ok:
        cols = [(m, c) for c in ok[0]["load"]["hybrid"] for m in MODES]
        lines += [(f"over HTTP: `km-search serve` subprocess on 127.0.0.1 loading each size's home; "
                   f"{ok[0]['requests_per_run']} GET /search per mode and concurrency after "
                   f"{ok[0]['warmup_per_run']} warm-up requests; every query embedded "
                   f"(query-vector cache off); 'repeat' = hybrid, each question asked before "
                   f"(default cache on)"),
                  f"{'passages':>10} {'start s':>7} {'RSS MB':>7} {'peak MB':>7} "
                  + " ".join(f"{f'{m} c={c} p50/p99 h (req/s)':>33}" for m, c in cols)
                  + " ".join(f"{f'repeat c={c} p50/p99 h (req/s)':>33}" for c in ok[0].get("warm", {}))]
    for r in rows:
        h = r["http"]
        if "error" in h:
            lines.append(f"{r['passages']:>10,} HTTP failed: {h['error'].splitlines()[0]}")
            continue
        cells = []
        for m, c in cols + [("repeat", c) for c in h.get("warm", {})]:
            x = h["warm"][c] if m == "repeat" else h["load"][m][c]
            bad = "".join(f" {x[k]} {k}" for k in ("errors", "empty") if x[k])
            cells.append(f"{x['p50_ms']:.1f}/{x['p99_ms']:.1f} h{x.get('server_p50_ms', 0):.1f} "
                         f"({x['req_per_s']:.0f}/s){bad}".rjust(33))
        lines.append(f"{r['passages']:>10,} {h['startup_s']:>7.1f} {h['server']['rss_mb']:>7.0f} "
                     f"{h['server']['peak_rss_mb']:>7.0f} " + " ".join(cells))
    if ok:
        lines.append("latencies in ms over HTTP (client-side, end to end); h = the handler's "
                     "own p50 (took_ms); RSS of the server process after the load (VmRSS), "
                     "peak = VmHWM")
    return "\n".join(lines)

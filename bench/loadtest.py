"""Bounded local load tests against 127.0.0.1 only.

    python -m bench.loadtest [--home DIR] [-n 200] [-c 4] [--mode hybrid]
    python -m bench.loadtest --soak 60 -c 50 --workers 2 [--home DIR]
    python -m bench.loadtest --soak 60 -c 50 --workers 2 --chat-every 0      # hybrid /search only
    python -m bench.loadtest --soak 60 -c 50 --workers 2 --passages 100000   # on a 100k home
    python -m bench.loadtest --soak 60 -c 50 --workers 2 --chat-every 0 --distinct  # no repeats

The first sends N GET /search, C at a time, and prints p50/p95/p99. ``--soak S`` runs C
clients for S seconds, each on its own keep-alive connection, mixing hybrid /search (3 of
4 requests) and /chat (1 of 4); a 503 (the server shedding load) is counted apart from
errors and its Retry-After honoured. It reports accepted req/s, p50/p99 of accepted
requests, the share shed and the errors; ``--chat-every 0`` sends only hybrid /search
(``--chat-every N``: every N-th request is a /chat). ``--passages N`` first writes a home
of N real Thai passages resampled as `km-search bench` does (bench.speed.resampled_home),
kept under ``--keep DIR`` for the next run or deleted afterwards. ``--workers N`` starts a real
`km-search serve --workers N` process; otherwise the app runs in-process with uvicorn (or
``--url`` of a running server). ``--distinct``: every request a different query cut from
the home's passages, so none is answered from the server's query-vector cache (the 8 fixed
queries are, after their first time).
"""
from __future__ import annotations

import argparse
import itertools
import shutil
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from api import create_app
from km_search.settings import load_config

QUERIES = ["ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร", "success factors for Khon Kaen Study",
           "แผนเพิ่มประสิทธิภาพองค์การ", "PMQA 4.0 working group", "จังหวัด 4.0",
           "Andaman hub medical network", "รางวัลคุณภาพการบริหารจัดการภาครัฐ", "สูตรแกงเขียวหวาน"]


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a local test or benchmark server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs)) - 1))]


MAX_REQUESTS, MAX_CONCURRENCY = 5000, 16  # bounded: this is a local check, not a stress test
MAX_SOAK_CLIENTS, MAX_SOAK_SECONDS = 64, 300


def _local(url: str) -> None:
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("the load test only targets 127.0.0.1")


def run(url: str, n: int, c: int, mode: str, queries: list[str] | None = None,
        warmup: int = 1, k: int = 10) -> dict:
    """GET /search ``n`` times, ``c`` at a time, cycling through ``queries``, after
    ``warmup`` untimed requests. Counts non-200 answers (errors) and 200s without hits
    (empty), so a caller can tell a fast failure from a fast answer."""
    _local(url)
    n, c = min(n, MAX_REQUESTS), max(1, min(c, MAX_CONCURRENCY))
    pool_qs = queries or QUERIES
    qs = list(itertools.islice(itertools.cycle(pool_qs), n))

    with httpx.Client(base_url=url, timeout=60) as client:
        for q in itertools.islice(itertools.cycle(pool_qs), warmup):
            client.get("/search", params={"q": q, "k": k, "mode": mode})

        def one(q: str) -> tuple[float, int, int, float]:
            t = time.perf_counter()
            r = client.get("/search", params={"q": q, "k": k, "mode": mode})
            ms = (time.perf_counter() - t) * 1000
            if r.status_code != 200:
                return ms, r.status_code, 0, 0.0
            body = r.json()
            return ms, 200, len(body["hits"]), body["took_ms"]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(c) as pool:
            res = list(pool.map(one, qs))
        wall = time.perf_counter() - t0
    times = [r[0] for r in res]
    took = [r[3] for r in res if r[1] == 200] or [0.0]
    return {"requests": n, "concurrency": c, "mode": mode, "warmup": warmup,
            "errors": sum(r[1] != 200 for r in res),
            "empty": sum(r[1] == 200 and r[2] == 0 for r in res),
            # the handler's own time (took_ms): the rest of p50 is HTTP, JSON and queueing
            "server_p50_ms": round(_pct(took, 50), 1), "server_p99_ms": round(_pct(took, 99), 1),
            "p50_ms": round(_pct(times, 50), 1), "p95_ms": round(_pct(times, 95), 1),
            "p99_ms": round(_pct(times, 99), 1), "mean_ms": round(statistics.mean(times), 1),
            "req_per_s": round(n / wall, 1)}


def distinct_queries(home: str | Path | None, n: int = 20000, seed: int = 0) -> list[str]:
    """Up to ``n`` different queries cut from the live build's passages: runs of 2-8 whole
    words (segmented as the index segments them), 10-44 characters like the 8 fixed
    QUERIES' 11-38; shuffled. Real Thai text no server has seen, so a soak with them
    measures first-time questions (every one embedded; no cache hit)."""
    import random
    import sqlite3

    from km_search import indexdir
    from km_search.thai.tokenize import segment

    build = indexdir.live_build(load_config(home=str(home) if home else None).home_path)
    if build is None:
        raise SystemExit("--distinct needs an index in the home")
    db = sqlite3.connect(f"file:{build / 'passages.db'}?mode=ro", uri=True)
    rows = db.execute("SELECT text FROM passages ORDER BY pid LIMIT ?", (max(n // 20, 500),)).fetchall()
    db.close()
    out, seen = [], set()
    for (text,) in rows:
        words = segment(text, keep_whitespace=True)
        for a, size in itertools.product(range(len(words)), (2, 4, 6, 8)):
            if words[a].isspace():
                continue
            q = " ".join("".join(words[a:a + size]).split())
            if 10 <= len(q) <= 44 and q not in seen:
                seen.add(q)
                out.append(q)
    random.Random(seed).shuffle(out)
    return out[:n]


def soak(url: str, seconds: float, clients: int, chat_every: int = 4,
         queries: list[str] | None = None) -> dict:
    """``clients`` threads for ``seconds``: hybrid /search, every ``chat_every``-th a /chat
    (``chat_every`` 0: none). ``queries``: each asked once in turn across all clients
    (e.g. :func:`distinct_queries`; cycled if the run outlasts them); default: the 8
    fixed QUERIES, which a server's query cache answers after their first time.
    Latencies are of accepted (200) requests; 503s are shed load (the client waits
    Retry-After, at most 1 s, as a polite client would), anything else is an error."""
    import http.client
    import json
    from urllib.parse import quote

    _local(url)
    clients = max(1, min(clients, MAX_SOAK_CLIENTS))
    seconds = max(1.0, min(seconds, MAX_SOAK_SECONDS))
    host, port = urlsplit(url).hostname, urlsplit(url).port
    lat: list[float] = []
    shed, errors, kinds = [0], [0], {}
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    shared, pool = itertools.count(), queries or QUERIES

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        n = i
        while time.perf_counter() < stop:
            j = next(shared) if queries else n  # given queries: each once, across clients
            q = pool[j % len(pool)]
            chat = chat_every > 0 and j % chat_every == 0
            n += 1
            t = time.perf_counter()
            try:
                if chat:
                    conn.request("POST", "/chat", json.dumps({"question": q}).encode(),
                                 {"content-type": "application/json"})
                else:
                    conn.request("GET", f"/search?mode=hybrid&q={quote(q)}")
                r = conn.getresponse()
                r.read()
                status, retry = r.status, r.getheader("retry-after")
            except (OSError, http.client.HTTPException) as e:
                status, retry = type(e).__name__, None
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
            ms = (time.perf_counter() - t) * 1000
            with lock:
                if status == 200:
                    lat.append(ms)
                elif status == 503:
                    shed[0] += 1
                else:
                    errors[0] += 1
                    kinds[str(status)] = kinds.get(str(status), 0) + 1
            if status == 503:
                time.sleep(min(1.0, float(retry or 1)))
        conn.close()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    total = len(lat) + shed[0] + errors[0]
    return {"clients": clients, "seconds": round(wall, 1), "chat_every": chat_every,
            "queries": f"{len(queries)} distinct, each asked once in turn" if queries
            else f"{len(QUERIES)} fixed, cycled", "requests": total,
            "accepted": len(lat), "accepted_per_s": round(len(lat) / wall, 1),
            "p50_ms": round(_pct(lat, 50), 1) if lat else None,
            "p99_ms": round(_pct(lat, 99), 1) if lat else None,
            "shed_share": round(shed[0] / total, 3) if total else 0.0,
            "errors": errors[0], "error_kinds": kinds}


def worker_memory_mb(pid: int) -> list[dict[str, float]]:
    """RSS and PSS (shared pages split between the processes mapping them) of each worker
    process of a `serve --workers N` supervisor ``pid``: memory-mapped index files count
    in every worker's RSS but only once in the PSS sum."""
    import psutil

    out = []
    for p in psutil.Process(pid).children(recursive=True):
        try:  # the workers are spawned processes; skip multiprocessing's resource tracker
            if "spawn_main" not in " ".join(p.cmdline()):
                continue
            m = p.memory_full_info()
        except psutil.Error:
            continue
        out.append({"pid": p.pid, "rss_mb": round(m.rss / 2**20), "pss_mb": round(m.pss / 2**20)})
    return out


def serve_process(home: str | None, workers: int, env_extra: dict | None = None):
    """A real `km-search serve --workers N` on a free 127.0.0.1 port: (process, url)."""
    import os
    import subprocess
    import sys

    port = free_port()
    # every client of a local load test is 127.0.0.1: the per-address limits would throttle
    # the test itself, so they are off unless the caller sets them
    env = dict(os.environ, KM_SEARCH_RATE_CHAT="off", KM_SEARCH_RATE_FEEDBACK="off",
               KM_SEARCH_RATE_EXPORT="off", **(env_extra or {}))
    if home:
        env["KM_SEARCH_HOME"] = str(home)
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join(x for x in (str(root), env.get("PYTHONPATH")) if x)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", str(workers)], env=env, cwd=root,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    while time.monotonic() - t0 < 300:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"km-search serve exited: {log.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("km-search serve did not become healthy in 300 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", help="km-search home (default: KM_SEARCH_HOME)")
    ap.add_argument("--url", help="a running server on 127.0.0.1 instead of starting one")
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("-c", type=int, default=4)
    ap.add_argument("--mode", default="hybrid", choices=["bm25", "dense", "hybrid"])
    ap.add_argument("--soak", type=float, help="seconds of mixed /search + /chat load from -c clients")
    ap.add_argument("--chat-every", type=int, default=4,
                    help="soak: every N-th request is a /chat (0 = hybrid /search only)")
    ap.add_argument("--distinct", action="store_true",
                    help="soak: every request a different query cut from the home's passages "
                         "(first-time questions) instead of 8 fixed ones")
    ap.add_argument("--workers", type=int, help="start `km-search serve --workers N` to test")
    ap.add_argument("--passages", type=int, help="first write a home of N resampled real Thai "
                    "passages (as `km-search bench` does) and test that")
    ap.add_argument("--keep", help="with --passages: keep the home in DIR/<N> (reused if there)")
    a = ap.parse_args()
    tmp, env = None, {}
    if a.passages:
        from bench.speed import resampled_home

        cfg = load_config(home=a.home)  # the model and embedding cache of this home
        root = Path(a.keep) if a.keep else Path(tmp := tempfile.mkdtemp(prefix="kmload-"))
        a.home = str(resampled_home(cfg, a.passages, root / str(a.passages)))
        env = {"KM_SEARCH_MODELS_DIR": str(cfg.models_dir)}
    try:
        _drive(a, a.url, env)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _drive(a, url: str | None, env: dict[str, str]) -> None:
    srv = proc = None
    if not url and a.workers:
        proc, url = serve_process(a.home, a.workers, env)
    if not url:
        import uvicorn

        port = free_port()
        cfg = load_config(home=a.home, **{k[10:].lower(): v for k, v in env.items()})
        srv = uvicorn.Server(uvicorn.Config(create_app(cfg, warm=True),
                                            host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=srv.run, daemon=True).start()
        while not srv.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
    try:
        qs = distinct_queries(a.home) if a.distinct else None
        res = soak(url, a.soak, a.c, a.chat_every, qs) if a.soak else run(url, a.n, a.c, a.mode, qs)
        if proc:
            res["workers"] = worker_memory_mb(proc.pid)
        print(res)
    finally:
        if srv:
            srv.should_exit = True
        if proc:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()

"""Bounded local load test of /search: N requests, C at a time, against 127.0.0.1 only.

    python -m bench.loadtest [--home DIR] [-n 200] [-c 4] [--mode hybrid]

Starts the app with uvicorn on a free local port (or uses --url http://127.0.0.1:PORT
of a running `km-search serve`), sends a mix of Thai/English queries, prints p50/p95/p99.
"""
from __future__ import annotations

import argparse
import itertools
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", help="km-search home (default: KM_SEARCH_HOME)")
    ap.add_argument("--url", help="a running server on 127.0.0.1 instead of starting one")
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("-c", type=int, default=4)
    ap.add_argument("--mode", default="hybrid", choices=["bm25", "dense", "hybrid"])
    a = ap.parse_args()
    srv = None
    url = a.url
    if not url:
        import uvicorn


        port = free_port()
        srv = uvicorn.Server(uvicorn.Config(create_app(load_config(home=a.home), warm=True),
                                            host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=srv.run, daemon=True).start()
        while not srv.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
    try:
        print(run(url, a.n, a.c, a.mode))
    finally:
        if srv:
            srv.should_exit = True


if __name__ == "__main__":
    main()

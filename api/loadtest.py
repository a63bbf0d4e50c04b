"""Bounded local load test of /search: N requests, C at a time, against 127.0.0.1 only.

    python -m api.loadtest [--home DIR] [-n 200] [-c 4] [--mode hybrid]

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

QUERIES = ["ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร", "success factors for Khon Kaen Study",
           "แผนเพิ่มประสิทธิภาพองค์การ", "PMQA 4.0 working group", "จังหวัด 4.0",
           "Andaman hub medical network", "รางวัลคุณภาพการบริหารจัดการภาครัฐ", "สูตรแกงเขียวหวาน"]


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs)) - 1))]


def run(url: str, n: int, c: int, mode: str) -> dict:
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("the load test only targets 127.0.0.1")
    qs = list(itertools.islice(itertools.cycle(QUERIES), n))
    client = httpx.Client(base_url=url, timeout=60)
    client.get("/search", params={"q": "warm up", "mode": mode})
    times, errors = [], 0

    def one(q: str) -> None:
        nonlocal errors
        t = time.perf_counter()
        r = client.get("/search", params={"q": q, "k": 10, "mode": mode})
        times.append((time.perf_counter() - t) * 1000)
        errors += r.status_code != 200
    t0 = time.perf_counter()
    with ThreadPoolExecutor(c) as pool:
        list(pool.map(one, qs))
    wall = time.perf_counter() - t0
    return {"requests": n, "concurrency": c, "mode": mode, "errors": errors,
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
    a.n, a.c = min(a.n, 5000), min(a.c, 16)  # bounded
    srv = None
    url = a.url
    if not url:
        import uvicorn

        from api import create_app
        from km_search.settings import load_config

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
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

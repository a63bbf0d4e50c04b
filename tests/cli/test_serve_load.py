"""`km-search serve --workers N` and the bounded in-flight queue, on a real server process.

Fake embedder, two worker processes, at most one request in flight per process, twelve
clients for a few seconds: the overflow is shed with 503 + Retry-After at once, every
other request is answered, nothing else fails. (Throughput figures belong to the
benchmark, `python -m bench.loadtest --soak`, not to this test.)
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.conftest import MODELS
import pytest

# server processes / fuzzing: the full tier (README's command and .ci/run) runs it, the fast tier doesn't
pytestmark = pytest.mark.slow



def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def test_workers_and_shedding_under_overload(fake_seed_home):
    from bench.loadtest import distinct_queries, serve_process, soak, worker_memory_mb

    proc, url = serve_process(str(fake_seed_home), 2, {
        "KM_SEARCH_MODEL": "fake", "KM_SEARCH_MODELS_DIR": str(MODELS),
        "KM_SEARCH_MAX_INFLIGHT": "1"})
    try:
        # uvicorn's supervisor runs the two workers as its child processes
        workers = _children(proc.pid)
        assert len(workers) >= 2, workers
        r = soak(url, seconds=4, clients=12)
        assert r["errors"] == 0, r
        assert r["accepted"] > 0 and r["shed_share"] > 0, r
        only_search = soak(url, seconds=2, clients=6, chat_every=0)  # --chat-every 0
        assert only_search["errors"] == 0 and only_search["accepted"] > 0, only_search
        # --distinct: first-time questions cut from the index's own passages, each once
        qs = distinct_queries(str(fake_seed_home))
        assert len(qs) == len(set(qs)) > 500 and all(10 <= len(q) <= 44 for q in qs)
        fresh = soak(url, seconds=2, clients=6, chat_every=0, queries=qs)
        assert fresh["errors"] == 0 and fresh["accepted"] > 0 and "distinct" in fresh["queries"]
        assert fresh["requests"] <= len(qs)  # no question asked twice in this short run
        # the load test's memory report: one row per worker, shared pages split in PSS
        mem = worker_memory_mb(proc.pid)
        assert len(mem) == 2 and {m["pid"] for m in mem} <= set(workers), (mem, workers)
        assert all(0 < m["pss_mb"] <= m["rss_mb"] for m in mem), mem
        # a shed answer says when to come back
        with httpx.Client(base_url=url, timeout=30) as c:
            with ThreadPoolExecutor(16) as pool:
                rs = list(pool.map(lambda _: c.post("/chat", json={"question": "ขอนแก่นศึกษา"}),
                                   range(32)))
        shed = [x for x in rs if x.status_code == 503]
        assert {x.status_code for x in rs} <= {200, 503}
        assert all(x.headers.get("retry-after") == "1" and "busy" in x.json()["detail"]
                   for x in shed)
        assert httpx.get(url + "/health", timeout=30).status_code == 200  # never shed
    finally:
        proc.terminate()
        proc.wait(30)

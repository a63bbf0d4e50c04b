"""Chaos: rebuild the index in a loop while clients hammer a real `km-search serve`.

A real server process on a free 127.0.0.1 port (reload_seconds 0.2, so it swaps builds
many times), four client threads on keep-alive connections, and full and incremental
rebuilds in this process. Every answer must be 2xx: no 500 from a build deleted under a
reader, no 503 from a half-loaded one. Bounded: 6 rebuilds. The fake embedder keeps it
in the full tier cheap (the swap mechanics do not depend on the model).
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import MODELS, ROOT, fake_config
import pytest

# server processes / fuzzing: the full tier (README's command and .ci/run) runs it, the fast tier doesn't
pytestmark = pytest.mark.slow

KK = "6fcee9b62a8409b7"
PATHS = ["/search?q=%E0%B8%82%E0%B8%AD%E0%B8%99%E0%B9%81%E0%B8%81%E0%B9%88%E0%B8%99",
         f"/documents/{KK}", "/filters", "/health", "/stats", f"/lessons/{KK}"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, "server exited"
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError("server never became healthy")


def test_rebuild_loop_under_http_load_gives_only_2xx(fake_seed_home, fake_embedder, tmp_path):
    from km_search.docstore import DocumentStore
    from indexer import update_index
    from km_search import indexdir
    from km_search.models import Document

    home = tmp_path / "home"
    shutil.copytree(fake_seed_home, home, symlinks=True)
    port = _free_port()
    env = dict(os.environ, KM_SEARCH_HOME=str(home), KM_SEARCH_MODELS_DIR=str(MODELS),
               KM_SEARCH_MODEL="fake",
               KM_SEARCH_RELOAD_SECONDS="0.2", KM_SEARCH_SERVE_WORKERS="1",
               PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    bad: list[str] = []
    done = threading.Event()
    counts = [0]

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = offset
        while not done.is_set():
            path = PATHS[i % len(PATHS)]
            i += 1
            try:
                conn.request("GET", path, headers={"accept": "application/json"})
                r = conn.getresponse()
                body = r.read()
                counts[0] += 1
                if not 200 <= r.status < 300:
                    bad.append(f"{path} -> {r.status}: {body[:200]!r}")
            except (OSError, http.client.HTTPException) as e:
                bad.append(f"{path} -> {type(e).__name__}: {e}")
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        _wait_healthy(port, proc)
        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        cfg = fake_config(home, reload_seconds=0.2)
        for round_ in range(6):
            if round_ % 2:
                update_index(cfg, full=True, embedder=fake_embedder)
            else:
                with DocumentStore(cfg.corpus_db) as s:
                    s.upsert([Document(doc_id=f"chaos{round_}", title=f"บันทึก {round_}",
                                       body=f"บันทึกการจัดการความรู้รอบที่ {round_} จังหวัดขอนแก่น")])
                update_index(cfg, embedder=fake_embedder)
            time.sleep(0.5)
        time.sleep(1.0)
        done.set()
        for t in threads:
            t.join(60)
        live = indexdir.live_build(home).name
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/health")
        assert json.loads(c.getresponse().read())["build"] == live  # the last build serves
    finally:
        done.set()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    assert counts[0] > 50
    assert bad == [], (bad[:10], Path(tmp_path / "serve.log").read_text(errors="replace")[-3000:])

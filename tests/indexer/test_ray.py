"""Ray ingestion on a real local cluster (a head and a worker node on 127.0.0.1).

The cluster is this test's own: free ports, its own temp dir, and `ray start --block`
processes in their own session that the fixture stops itself (never `ray stop`, which
would stop every Ray process on the machine).
"""
from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("RAY_AUTH_MODE", "token")  # before Ray reads its settings
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# The test cluster brings its own token: a fresh machine has no ~/.ray/auth_token, and
# `ray start --head` refuses token mode without one (it does not generate it).
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
try:
    import ray
except ImportError:  # pragma: no cover - install.sh installs the ray extra
    ray = None

from tests.conftest import MODELS, ROOT, make_config, strict_skip  # noqa: E402
from corpus.seeds import bundled_seeds  # noqa: E402
from km_search.docstore import DocumentStore  # noqa: E402
from km_search import indexdir  # noqa: E402
from km_search.search import Searcher  # noqa: E402
from tests.indexer.test_index import CountingEmbedder  # noqa: E402

pytestmark = pytest.mark.slow  # starts a Ray cluster
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_ports() -> list[str]:
    """Every port a node would otherwise take from a fixed default (52365, 8085, ...);
    no Ray client server runs (ray[client] is not installed)."""
    return [f"--{name}={_free_port()}" for name in (
        "node-manager-port", "object-manager-port",
        "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port",
        "runtime-env-agent-port")]


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM makes `ray start --block` stop the processes it started (all nodes at once:
    the nodes' own stop takes ~30 s, so after 10 s their sessions are killed)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.time() + 10  # then SIGKILL: a graceful stop took ~30 s
    for proc in procs:
        try:
            proc.wait(max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # our own session only (start_new_session)
        except ProcessLookupError:
            pass
        proc.wait(30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if ray is None:
        strict_skip("ray is not installed (pip install 'km-search[ray]')")
    tmp = tmp_path_factory.mktemp("ray")
    # Ray 2.5x+ secures clusters with a token; every node and the driver run in token
    # mode with the same RAY_AUTH_TOKEN (set above) to join.
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token",
               KM_SEARCH_MODELS_DIR=str(MODELS))
    address = f"127.0.0.1:{_free_port()}"
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", f"--temp-dir={tmp}",
              "--disable-usage-stats", "--block"]
    logs = [tmp / "head.log", tmp / "worker.log"]  # what a failed start said

    def tail() -> str:
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in logs if p.exists())
    procs = [subprocess.Popen([RAY, "start", "--head", f"--port={address.split(':')[1]}",
                               "--include-dashboard=false", *common, *_node_ports()],
                              env=env, start_new_session=True, stdout=logs[0].open("wb"),
                              stderr=subprocess.STDOUT)]
    try:
        deadline = time.time() + 600  # generous: a loaded 2-core machine is slow to start Ray
        while True:  # the GCS port answers once the head is up
            try:
                socket.create_connection(("127.0.0.1", int(address.split(":")[1])), 1).close()
                break
            except OSError:
                assert procs[0].poll() is None and time.time() < deadline, tail()
                time.sleep(1)
        procs.append(subprocess.Popen([RAY, "start", f"--address={address}", *common,
                                       *_node_ports()], env=env, start_new_session=True,
                                      stdout=logs[1].open("wb"), stderr=subprocess.STDOUT))
        while True:  # a loaded machine may take a while to register the nodes
            try:
                ray.init(address=address, log_to_driver=False, _node_ip_address="127.0.0.1")
                break
            except (ConnectionError, RuntimeError):
                assert procs[1].poll() is None and time.time() < deadline, tail()
                time.sleep(5)
        try:
            while len([n for n in ray.nodes() if n["Alive"]]) < 2:
                assert procs[1].poll() is None and time.time() < deadline, tail()
                time.sleep(1)
        finally:
            ray.shutdown()
        yield address
    finally:
        _stop(list(reversed(procs)))


def _content(home: Path):
    build = indexdir.live_build(home)
    db = sqlite3.connect(build / "passages.db")
    rows = db.execute("SELECT pid, doc_id, ordinal, title, text, tokens FROM passages ORDER BY pid").fetchall()
    return build, rows


def test_ray_build_matches_local_build(cluster, seed_home, embedder, tmp_path, monkeypatch):
    """Ray's actors embed every passage: the driver encodes none, its cache was empty for
    those texts before the run and holds Ray's vectors after it, and the index equals a
    local build's."""
    from indexer.ray_pipeline import update_index_ray
    from km_search.embed.cache import EmbeddingCache, _key

    monkeypatch.setenv("RAY_AUTH_MODE", "token")

    home = tmp_path / "rayhome"
    cfg = make_config(home, embed_cache=str(home / "own-cache.db"))  # nothing cached: Ray embeds
    with DocumentStore(cfg.corpus_db) as store:
        store.upsert(bundled_seeds())
    _, local_rows = _content(seed_home)
    texts = [f"{r[3]}\n{r[4]}" for r in local_rows]
    cache = EmbeddingCache(cfg.cache_db)
    assert len(cache.missing(embedder.fingerprint, texts)) == len(set(texts))  # empty before
    cache.close()

    counting = CountingEmbedder(embedder)
    logs: list[str] = []
    st = update_index_ray(cfg, cluster, log=logs.append, embedder=counting)
    assert counting.passages == 0, "the driver embedded passages itself"
    sent = [m for m in logs if re.search(r"-> \d+ passages embedded on \d+ actor", m)]
    assert sent and int(re.search(r"-> (\d+) passages", sent[0]).group(1)) == st.passages, logs
    assert st.documents == 5 and st.passages == len(local_rows)
    _, ray_rows = _content(home)
    assert ray_rows == local_rows  # same passages, same tokens
    # the vectors came back from the actors into the driver's (previously empty) cache,
    # and they are the vectors a local build makes
    cache = EmbeddingCache(cfg.cache_db)
    assert cache.missing(embedder.fingerprint, texts) == []
    got = cache.lookup(embedder.fingerprint, texts)
    cache.close()
    ray_vecs = np.stack([got[_key(t)] for t in texts])
    assert np.allclose(ray_vecs, embedder.encode_passages(texts), atol=1e-5)
    a, b = Searcher(cfg, embedder), Searcher(make_config(seed_home), embedder)
    for q in ("ปัจจัยความสำเร็จ ขอนแก่นศึกษา", "success factors for Khon Kaen Study"):
        ha, hb = a.search(q, k=5), b.search(q, k=5)
        assert [(h.doc_id, h.ordinal) for h in ha] == [(h.doc_id, h.ordinal) for h in hb]
        assert np.allclose([h.score for h in ha], [h.score for h in hb], atol=1e-4)
    # nothing new: the second Ray update sends nothing and changes nothing
    before = indexdir.live_build(home)
    st2 = update_index_ray(cfg, cluster, log=logs.append, embedder=counting)
    assert st2.unchanged and indexdir.live_build(home) == before and counting.passages == 0


def test_cli_index_ray(cluster, seed_home, tmp_path):
    """`km-search index --ray ADDRESS` as a user runs it: seeds imported, embedded on the
    cluster (the log line says how many passages), the index searchable."""
    home = tmp_path / "clihome"
    env = dict(os.environ, KM_SEARCH_HOME=str(home), KM_SEARCH_MODELS_DIR=str(MODELS),
               RAY_AUTH_MODE="token", PYTHONIOENCODING="utf-8", COLUMNS="200")
    r = subprocess.run([sys.executable, "-m", "cli", "index", "--ray", cluster],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    n = len(_content(seed_home)[1])
    assert "imported 5 bundled seed documents" in r.stdout
    assert re.search(rf"-> {n} passages embedded on \d+ actor", r.stderr), r.stderr[-3000:]
    assert f"now 5 documents, {n} passages (full build" in r.stdout

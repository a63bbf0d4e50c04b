"""Ray ingestion on a real local cluster (a head and a worker node on 127.0.0.1)."""
from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("RAY_AUTH_MODE", "token")  # before Ray reads its settings
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# The test cluster brings its own token: a fresh machine has no ~/.ray/auth_token, and
# `ray start --head` refuses token mode without one (it does not generate it).
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
ray = pytest.importorskip("ray")

from conftest import MODELS, make_config  # noqa: E402
from corpus.seeds import bundled_seeds  # noqa: E402
from km_search.docstore import DocumentStore  # noqa: E402
from km_search import indexdir  # noqa: E402
from km_search.search import Searcher  # noqa: E402

pytestmark = pytest.mark.slow  # starts a Ray cluster

RAY = str(Path(sys.executable).with_name("ray"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ray")
    # Ray 2.5x+ secures clusters with a token; every node and the driver run in token
    # mode with the same RAY_AUTH_TOKEN (set above) to join.
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token",
               KM_SEARCH_MODELS_DIR=str(MODELS))
    port = "6391"
    head = [RAY, "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
            "--node-ip-address=127.0.0.1", f"--temp-dir={tmp}", "--disable-usage-stats"]
    subprocess.run(head, check=True, env=env, capture_output=True, timeout=180)
    subprocess.run([RAY, "start", f"--address=127.0.0.1:{port}", "--num-cpus=1",
                    "--node-ip-address=127.0.0.1", "--disable-usage-stats"],
                   check=True, env=env, capture_output=True, timeout=180)
    yield f"127.0.0.1:{port}"
    subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def _content(home: Path):
    build = indexdir.live_build(home)
    db = sqlite3.connect(build / "passages.db")
    rows = db.execute("SELECT pid, doc_id, ordinal, title, text, tokens FROM passages ORDER BY pid").fetchall()
    return build, rows


def test_ray_build_matches_local_build(cluster, seed_home, embedder, tmp_path, monkeypatch):
    from indexer.ray_pipeline import update_index_ray

    monkeypatch.setenv("RAY_AUTH_MODE", "token")

    home = tmp_path / "rayhome"
    cfg = make_config(home, embed_cache=str(home / "own-cache.db"))  # nothing cached: Ray embeds
    with DocumentStore(cfg.corpus_db) as store:
        store.upsert(bundled_seeds())
    logs: list[str] = []
    st = update_index_ray(cfg, cluster, log=logs.append)
    assert any("actor" in m for m in logs), logs
    assert st.documents == 5 and st.embedded == st.passages  # looked up from Ray's vectors
    _, ray_rows = _content(home)
    _, local_rows = _content(seed_home)
    assert ray_rows == local_rows  # same passages, same tokens
    a, b = Searcher(cfg, embedder), Searcher(make_config(seed_home), embedder)
    for q in ("ปัจจัยความสำเร็จ ขอนแก่นศึกษา", "success factors for Khon Kaen Study"):
        ha, hb = a.search(q, k=5), b.search(q, k=5)
        assert [(h.doc_id, h.ordinal) for h in ha] == [(h.doc_id, h.ordinal) for h in hb]
        assert np.allclose([h.score for h in ha], [h.score for h in hb], atol=1e-4)
    # all vectors came from the cluster: the driver's cache holds every passage
    from km_search.embed.cache import EmbeddingCache
    cache = EmbeddingCache(cfg.cache_db)
    texts = [f"{r[3]}\n{r[4]}" for r in ray_rows]
    assert cache.missing(embedder.fingerprint, texts) == []
    cache.close()
    # nothing new: the second Ray update sends nothing and changes nothing
    before = indexdir.live_build(home)
    st2 = update_index_ray(cfg, cluster, log=logs.append)
    assert st2.unchanged and indexdir.live_build(home) == before

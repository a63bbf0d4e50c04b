"""A crawl SIGKILLed at random moments resumes to the same documents as an
uninterrupted one (no loss, no duplicates)."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from km_search.docstore import DocumentStore
from tests.crawl_server import Server, sources_toml
from km_search.settings import load_config

pytestmark = pytest.mark.slow  # starts and kills 22 crawler processes (~40 s)

ROOT = Path(__file__).resolve().parents[3]
KILLS = 12


@pytest.fixture(scope="module")
def server():
    s = Server("joomla")  # list pages, numbered pagination, download.php attachments
    yield s
    s.close()


def _crawl_proc(home: Path, src: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return subprocess.Popen([sys.executable, "-m", "corpus.crawl.runner", "--home", str(home),
                             "--sources", str(src), "--no-index"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _snapshot(home: Path) -> dict[str, tuple[str, str]]:
    with DocumentStore(load_config(home=str(home)).corpus_db) as store:
        rows = store.db.execute("SELECT doc_id, url, hash FROM documents").fetchall()
    assert len(rows) == len({r[1] for r in rows})  # one row per URL
    return {r[0]: (r[1], r[2]) for r in rows}


def test_killed_crawl_resumes_without_loss_or_duplicates(server, tmp_path):
    src = tmp_path / "sources.toml"
    src.write_text(sources_toml({"joomla": server}, delay=0.15), encoding="utf-8")
    ref = tmp_path / "ref"
    p = _crawl_proc(ref, src)
    t0 = time.monotonic()
    assert p.wait(60) == 0, p.stderr.read().decode()
    full = time.monotonic() - t0
    expected = _snapshot(ref)
    assert len(expected) >= 10

    rng = random.Random(1234)
    home = tmp_path / "killed"
    kills = 0
    for _ in range(KILLS):
        p = _crawl_proc(home, src)
        time.sleep(rng.uniform(0.2, full * 0.7))  # resumed runs have less left to do
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait(30)
    p = _crawl_proc(home, src)
    assert p.wait(60) == 0, p.stderr.read().decode()
    print(f"\n{kills} of {KILLS} runs killed mid-crawl")
    assert kills >= KILLS // 2
    assert _snapshot(home) == expected

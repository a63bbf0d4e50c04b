"""Builds and swaps: damaged live builds are rebuilt, pinned builds outlive swaps, /health
searches for real. Real FAISS, SQLite and bm25s files in a copy of the seed home."""
from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from tests.conftest import fake_config

KK = "6fcee9b62a8409b7"  # seed 000: ขอนแก่นศึกษา


def _add_note(home, text="บันทึกใหม่เรื่องการจัดการความรู้ของจังหวัดขอนแก่น ปี ๒๕๖๗"):
    from km_search.docstore import DocumentStore
    from km_search.models import Document

    with DocumentStore(home / "corpus.db") as s:
        s.upsert([Document(doc_id="note1", title="บันทึกใหม่", body=text)])


def _flip(path, offset_frac=0.5):
    data = bytearray(path.read_bytes())
    i = int(len(data) * offset_frac)
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _consistent(cfg, fake_embedder):
    from km_search.search import Searcher

    s = Searcher(cfg, fake_embedder)
    n = s.db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
    assert s.vectors.count() == n == s.lexical.count() == s.manifest["counts"]["passages"]
    assert s.search("ขอนแก่นศึกษา", k=3)
    return n


@pytest.mark.parametrize("damage", ["truncate passages.db", "flip vectors.faiss", "flip bm25",
                                    "delete bm25 file"])
def test_incremental_index_verifies_the_live_build_and_rebuilds_it(fake_work_home, fake_embedder, damage):
    from indexer import update_index
    from km_search import indexdir

    cfg = fake_config(fake_work_home)
    live = indexdir.live_build(fake_work_home)
    before = indexdir.read_manifest(live)["counts"]["passages"]
    if damage == "truncate passages.db":
        p = live / "passages.db"
        os.truncate(p, p.stat().st_size // 2)
    elif damage == "flip vectors.faiss":
        _flip(live / "vectors.faiss", 0.6)
    else:
        f = sorted(p for p in (live / "bm25").rglob("*") if p.is_file() and p.stat().st_size > 64)[0]
        f.unlink() if damage.startswith("delete") else _flip(f, 0.7)
    _add_note(fake_work_home)
    st = update_index(cfg, embedder=fake_embedder)
    assert st.full and any("rebuilding it in full" in n for n in st.notes), st.notes
    assert st.documents == 6 and st.passages > before
    assert _consistent(cfg, fake_embedder) == st.passages


def test_a_build_pinned_by_a_server_survives_swaps_until_released(fake_work_home, fake_embedder):
    """/documents and /filters keep answering from the loaded build after two rebuilds
    swapped the index (the server has not reloaded yet: reload_seconds is long)."""
    from api import create_app
    from indexer import update_index
    from km_search import indexdir

    first = indexdir.live_build(fake_work_home)
    cfg = fake_config(fake_work_home, reload_seconds=3600)
    with TestClient(create_app(cfg, fake_embedder)) as c:
        assert c.get(f"/documents/{KK}").status_code == 200
        builder = fake_config(fake_work_home, reload_seconds=0)  # no grace: only the pin protects
        for _ in range(2):
            update_index(builder, full=True, embedder=fake_embedder)
        assert indexdir.live_build(fake_work_home) != first and first.exists()
        for path in (f"/documents/{KK}", "/filters", "/stats", "/health"):
            r = c.get(path)
            assert r.status_code == 200, (path, r.text)
        assert c.get("/search", params={"q": "ขอนแก่นศึกษา"}).status_code == 200
    # unpinned builds go at the next index run; the one in between went already
    c.app.state.service.searcher._pins.clear()
    import gc
    gc.collect()
    _add_note(fake_work_home)
    update_index(builder, embedder=fake_embedder)
    left = [d for d in indexdir.builds_dir(fake_work_home).iterdir()]
    assert left == [indexdir.live_build(fake_work_home)]


def test_grace_keeps_superseded_builds_for_twice_reload_seconds(fake_work_home, fake_embedder):
    from indexer import update_index
    from km_search import indexdir

    first = indexdir.live_build(fake_work_home)
    update_index(fake_config(fake_work_home, reload_seconds=600), full=True, embedder=fake_embedder)
    _add_note(fake_work_home)
    update_index(fake_config(fake_work_home, reload_seconds=600), embedder=fake_embedder)
    assert first.exists()  # swapped less than 2 x 600 s ago, nobody pins it: still kept


def test_health_runs_a_real_search_and_reports_503_with_the_reason(fake_work_home, fake_embedder):
    from api import create_app
    from km_search import indexdir

    with TestClient(create_app(fake_config(fake_work_home), fake_embedder)) as c:
        r = c.get("/health")
        assert r.status_code == 200 and r.json()["status"] == "ok"
        p = indexdir.live_build(fake_work_home) / "passages.db"
        os.truncate(p, 4096)  # the loaded build's passage table is damaged under the server
        r = c.get("/health")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "unavailable" and body["error"]


def test_concurrent_searches_match_serial_ones_across_a_reload(fake_work_home, fake_embedder):
    """Searches run on many threads at once (no lock around them) and give exactly what
    the same searches give one at a time; a reload swapped in mid-way gives each search
    the old build's answer or the new one's, never a mix (pids of one, rows of the other)."""
    from concurrent.futures import ThreadPoolExecutor

    from indexer import update_index
    from km_search.search import Searcher

    cfg = fake_config(fake_work_home)
    queries = [("ขอนแก่นศึกษา", "hybrid"), ("การจัดการความรู้ของจังหวัดขอนแก่น", "hybrid"),
               ("ปัจจัยความสำเร็จ", "bm25"), ("แผนเพิ่มประสิทธิภาพองค์การ", "dense"),
               ("บันทึกใหม่ ปี ๒๕๖๗", "hybrid"), ("PMQA 4.0", "hybrid")]

    def key(s, q, mode):
        return tuple((h.chunk_id, h.doc_id, round(h.score, 6), h.snippet, tuple(h.highlights))
                     for h in s.search(q, k=5, mode=mode))

    s = Searcher(cfg, fake_embedder)
    old = {qm: key(s, *qm) for qm in queries}
    with ThreadPoolExecutor(8) as pool:  # the same Searcher from 8 threads: same answers
        got = list(pool.map(lambda i: (queries[i % 6], key(s, *queries[i % 6])), range(120)))
    assert all(r == old[qm] for qm, r in got)

    _add_note(fake_work_home)
    update_index(cfg, embedder=fake_embedder)
    new = {qm: key(Searcher(cfg, fake_embedder), *qm) for qm in queries}
    assert any(new[qm] != old[qm] for qm in queries)  # the swap changes some answers

    with ThreadPoolExecutor(8) as pool:
        futs = [pool.submit(lambda qm=queries[i % 6]: (qm, key(s, *qm))) for i in range(240)]
        assert s.reload_if_changed()
        got = [f.result() for f in futs]
    assert all(r in (old[qm], new[qm]) for qm, r in got)
    assert all(key(s, *qm) == new[qm] for qm in queries)

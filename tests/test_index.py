"""The persisted index: round trip, incremental updates, atomic rebuilds, damage."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from conftest import MODELS, ROOT, make_config
from corpus.store import DocumentStore
from indexer import update_index
from km_search import indexdir
from km_search.models import Document
from km_search.search import Filters, QueryError, Searcher

KK = "6fcee9b62a8409b7"


def _ids(hits):
    return [(h.doc_id, h.ordinal) for h in hits]


class CountingEmbedder:
    """Wraps the real embedder and counts passages it is asked to embed."""

    def __init__(self, inner):
        self.inner, self.passages = inner, 0
        self.name, self.dim, self.fingerprint = inner.name, inner.dim, inner.fingerprint

    def encode_queries(self, texts):
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts, progress=None):
        self.passages += len(texts)
        return self.inner.encode_passages(texts, progress)


def test_manifest_and_files(seed_home):
    build = indexdir.live_build(seed_home)
    assert (seed_home / "index").is_symlink() and build.parent.name == "index.d"
    man = indexdir.read_manifest(build, verify=True)
    assert man["model"]["dim"] == 384
    assert man["tokenizer"]["engine"] in ("nlpo3", "newmm")
    assert man["counts"]["documents"] == 5
    assert {"passages.db", "vectors.faiss", "bm25/pids.npy"} <= set(man["files"])


def test_search_round_trip_after_reload(seed_home, embedder):
    cfg = make_config(seed_home)
    a = Searcher(cfg, embedder).search("ปัจจัยความสำเร็จ ขอนแก่นศึกษา", k=5)
    b = Searcher(cfg, embedder).search("ปัจจัยความสำเร็จ ขอนแก่นศึกษา", k=5)
    assert _ids(a) == _ids(b) and [h.score for h in a] == pytest.approx([h.score for h in b])
    assert a[0].doc_id == KK and "ขอนแก่นศึกษา" in a[0].text
    assert a[0].published == "2021-12-08" and a[0].publisher
    assert set(a[0].scores) == {"bm25", "dense"}
    # highlight spans point at query words inside the snippet
    assert any(a[0].snippet[s:e] in ("ขอนแก่น", "ศึกษา", "ความสำเร็จ") for s, e in a[0].highlights)


def test_second_update_embeds_nothing(work_home, embedder):
    counting = CountingEmbedder(embedder)
    st = update_index(make_config(work_home), embedder=counting)
    assert st.unchanged and counting.passages == 0


@pytest.mark.parametrize("query", ["success factors for Khon Kaen Study",
                                   "ปัจจัยความสำเร็จ ขอนแก่นศึกษา"])
def test_khon_kaen_study_passage_ranks_first(seed_home, embedder, query):
    hits = Searcher(make_config(seed_home), embedder).search(query, k=3)
    assert hits[0].doc_id == KK and "ขอนแก่นศึกษา" in hits[0].text


def test_modes_and_max_per_doc(seed_home, embedder):
    s = Searcher(make_config(seed_home), embedder)
    for mode in ("bm25", "dense", "hybrid"):
        hits = s.search("รางวัลคุณภาพการบริหารจัดการภาครัฐ 4.0", k=10, mode=mode, max_per_doc=1)
        assert len({h.doc_id for h in hits}) == len(hits)
    hits = s.search("รางวัลคุณภาพการบริหารจัดการภาครัฐ 4.0", k=10, max_per_doc=2)
    assert max(sum(1 for h in hits if h.doc_id == d) for d in {h.doc_id for h in hits}) <= 2
    with pytest.raises(QueryError):
        s.search("x", mode="fuzzy")


def test_filters_restrict_results(seed_home, embedder):
    s = Searcher(make_config(seed_home), embedder)
    q = "ระบบราชการ 4.0"
    assert {h.doc_id for h in s.search(q, k=10, filters=Filters(date_from="2022-01-01"))} <= {
        "d7880ede011fff30", "c548de22d8cc4494"}
    assert {h.doc_id for h in s.search(q, k=10, filters=Filters(province="พังงา"))} == {KK}
    assert s.search(q, k=5, filters=Filters(date_to="1999-01-01")) == []


def test_incremental_add_change_remove(work_home, embedder):
    cfg = make_config(work_home)
    counting = CountingEmbedder(embedder)
    new = Document(doc_id="kmtest000000001", title="ศูนย์เรียนรู้เกษตรทฤษฎีใหม่ บ้านโนนสวรรค์",
                   body="วิสาหกิจชุมชนบ้านโนนสวรรค์ จังหวัดมหาสารคาม ใช้ปุ๋ยอินทรีย์ชีวภาพ "
                        "ลดต้นทุนการผลิตข้าวหอมมะลิได้ร้อยละ ๓๐", source="test")
    with DocumentStore(cfg.corpus_db) as store:
        store.upsert([new])
    before = indexdir.live_build(work_home)
    st = update_index(cfg, embedder=counting)
    assert not st.full and st.added == 1 and counting.passages == 1
    # the superseded build stays for 2 x reload_seconds (a server may still read it)
    assert indexdir.live_build(work_home) != before and before.exists()
    s = Searcher(cfg, embedder)
    hit = s.search("ปุ๋ยอินทรีย์ข้าวหอมมะลิ มหาสารคาม", k=1)[0]
    assert hit.doc_id == new.doc_id and hit.title == new.title
    # changed text replaces the old passages; removed documents disappear
    with DocumentStore(cfg.corpus_db) as store:
        store.upsert([Document(doc_id=new.doc_id, title=new.title,
                               body="โครงการธนาคารน้ำใต้ดิน ลดปัญหาน้ำท่วมและภัยแล้ง", source="test")])
        store.delete([KK])
    st = update_index(cfg, embedder=counting)
    assert st.removed == 1 and st.passages < 30
    s2 = Searcher(cfg, embedder)
    assert s2.search("ธนาคารน้ำใต้ดิน", k=1, mode="bm25")[0].doc_id == new.doc_id
    assert s2.search("ปุ๋ยอินทรีย์ข้าวหอมมะลิ", k=3, mode="bm25") == []
    assert all(h.doc_id != KK for h in s2.search("ขอนแก่นศึกษา", k=10))
    assert s2.vectors.ntotal == s2.manifest["counts"]["passages"]


def test_build_that_fails_midway_leaves_live_index_intact(work_home, embedder):
    cfg = make_config(work_home)
    before = indexdir.live_build(work_home)
    want = _ids(Searcher(cfg, embedder).search("สมัชชาพังงา", k=3))

    def boom(stage, done, total):
        if stage == "embed":
            raise RuntimeError("disk on fire")
    with pytest.raises(RuntimeError):
        update_index(cfg, full=True, embedder=embedder, progress=boom)
    assert indexdir.live_build(work_home) == before
    assert not [p for p in (work_home / "index.d").iterdir() if p.suffix == ".tmp"]
    assert _ids(Searcher(cfg, embedder).search("สมัชชาพังงา", k=3)) == want


KILL_SCRIPT = r"""
import os, signal, sys
sys.path.insert(0, {root!r})
from km_search.settings import load_config
from indexer import update_index
cfg = load_config(home={home!r}, models_dir={models!r})
def prog(stage, done, total):
    if stage == "embed" and done >= {after}:
        os.kill(os.getpid(), signal.SIGKILL)
update_index(cfg, full=True, progress=prog)
"""


def test_killed_rebuild_keeps_old_index_and_resumes_from_cache(work_home, embedder):
    cfg = make_config(work_home)
    # new text, so the embedding cache has to do real work during the killed build
    with DocumentStore(cfg.corpus_db) as store:
        docs = list(store.iter_documents())
        for d in docs:
            d.body = d.body + "\nหมายเหตุ: ฉบับปรับปรุง"
            d.hash = ""
            d.__post_init__()
        store.upsert(docs)
    before = indexdir.live_build(work_home)
    script = KILL_SCRIPT.format(root=str(ROOT), home=str(work_home), models=str(MODELS), after=1)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert indexdir.live_build(work_home) == before  # old build still live ...
    assert Searcher(cfg, embedder).search("ขอนแก่นศึกษา", k=1)[0].doc_id == KK  # ... and usable
    assert any(p.suffix == ".tmp" for p in (work_home / "index.d").iterdir())
    counting = CountingEmbedder(embedder)
    st = update_index(cfg, embedder=counting)
    assert st.passages > 0 and counting.passages < st.passages  # resumed from the cache
    assert not any(p.suffix == ".tmp" for p in (work_home / "index.d").iterdir())
    assert "ฉบับปรับปรุง" in Searcher(cfg, embedder).search("ฉบับปรับปรุง", k=1, mode="bm25")[0].text


def test_corrupt_and_mismatched_index_give_clear_errors(work_home, embedder):
    cfg = make_config(work_home)
    build = indexdir.live_build(work_home)
    (build / "vectors.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(indexdir.IndexCorrupt, match="rebuild"):
        Searcher(cfg, embedder)
    with pytest.raises(indexdir.IndexCorrupt, match="checksum"):
        indexdir.read_manifest(build, verify=True)
    (build / "manifest.json").write_text("{broken")
    with pytest.raises(indexdir.IndexCorrupt, match="unreadable"):
        Searcher(cfg, embedder)
    # a corrupt live index is replaced by a full build; documents are not lost
    st = update_index(cfg, embedder=embedder)
    assert st.full and st.documents == 5
    man_path = indexdir.live_build(work_home) / "manifest.json"
    man = json.loads(man_path.read_text())
    man["model"]["fingerprint"], man["model"]["name"] = "0" * 16, "intfloat/multilingual-e5-base"
    man_path.write_text(json.dumps(man))
    with pytest.raises(indexdir.IndexMismatch, match="multilingual-e5-base"):
        Searcher(cfg, embedder).search("ขอนแก่นศึกษา", mode="dense")
    # bm25-only search does not need the model and still works
    assert Searcher(cfg, embedder).search("ขอนแก่นศึกษา", mode="bm25")[0].doc_id == KK


def test_missing_index(tmp_path, embedder):
    with pytest.raises(indexdir.IndexMissing, match="km-search index"):
        Searcher(make_config(tmp_path / "empty"), embedder)

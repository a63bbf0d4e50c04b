"""The persisted index: round trip, incremental updates, atomic rebuilds, damage.

Index mechanics run on the fake embedder (fast tier); ranking with the real model is
checked by the tests on ``seed_home``.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests.conftest import MODELS, ROOT, fake_config, make_config
from km_search.docstore import DocumentStore
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


def test_second_update_embeds_nothing(fake_work_home, fake_embedder):
    counting = CountingEmbedder(fake_embedder)
    st = update_index(fake_config(fake_work_home), embedder=counting)
    assert st.unchanged and counting.passages == 0


@pytest.mark.parametrize("query", ["success factors for Khon Kaen Study",
                                   "ปัจจัยความสำเร็จ ขอนแก่นศึกษา"])
def test_khon_kaen_study_passage_ranks_first(seed_home, embedder, query):
    hits = Searcher(make_config(seed_home), embedder).search(query, k=3)
    assert hits[0].doc_id == KK and "ขอนแก่นศึกษา" in hits[0].text


def test_modes_and_max_per_doc(fake_seed_home, fake_embedder):
    s = Searcher(fake_config(fake_seed_home), fake_embedder)
    q = "รางวัลคุณภาพการบริหารจัดการภาครัฐ 4.0"
    for mode in ("bm25", "dense", "hybrid"):
        hits = s.search(q, k=10, mode=mode, max_per_doc=1)
        assert len(hits) >= 3 and len({h.doc_id for h in hits}) == len(hits), mode
        # without the cap the same query brings several passages of one document
        uncapped = s.search(q, k=10, mode=mode, max_per_doc=10)
        assert len({h.doc_id for h in uncapped}) < len(uncapped), mode
    hits = s.search(q, k=10, max_per_doc=2)
    per_doc = [sum(1 for h in hits if h.doc_id == d) for d in {h.doc_id for h in hits}]
    assert hits and max(per_doc) == 2  # the cap is reached, never passed
    with pytest.raises(QueryError):
        s.search("x", mode="fuzzy")


def test_filters_restrict_results(fake_seed_home, fake_embedder):
    s = Searcher(fake_config(fake_seed_home), fake_embedder)
    q = "ระบบราชการ 4.0"
    assert len({h.doc_id for h in s.search(q, k=10)}) == 5  # unfiltered: every seed answers
    assert {h.doc_id for h in s.search(q, k=10, filters=Filters(date_from="2022-01-01"))} == {
        "d7880ede011fff30", "c548de22d8cc4494"}
    assert {h.doc_id for h in s.search(q, k=10, filters=Filters(province="พังงา"))} == {KK}
    assert s.search(q, k=5, filters=Filters(date_to="1999-01-01")) == []
    # publisher: a substring of the publisher field, in every mode
    for mode in ("bm25", "dense", "hybrid"):
        got = {h.doc_id for h in s.search(q, k=10, mode=mode, filters=Filters(publisher="พช."))}
        assert got == {"060103db4d9e3160"}, mode
    assert {h.publisher for h in s.search(q, k=10, filters=Filters(publisher="มหาดไทย"))} == {
        "สำนักงาน ก.พ.ร. (OPDC) / กระทรวงมหาดไทย", "ทำเนียบรัฐบาล (thaigov.go.th) / กระทรวงมหาดไทย"}
    assert s.search(q, k=10, filters=Filters(publisher="กรมประมง")) == []
    assert len({h.doc_id for h in s.search(q, k=10, filters=Filters(source="seed"))}) == 5
    assert s.search(q, k=10, filters=Filters(source="crawl:opdc")) == []


def test_rrf_fusion_through_the_searcher(fake_seed_home, fake_embedder):
    """fusion=rrf: the Searcher ranks by sum 1/(60 + rank) over the BM25 and dense lists."""
    q = "ปัจจัยความสำเร็จ ขอนแก่นศึกษา"
    s = Searcher(fake_config(fake_seed_home, fusion="rrf"), fake_embedder)
    ranked, parts, _ = s.retrieve(q)
    want: dict[int, float] = {}
    for name, scores in parts.items():  # each list in its retriever's rank order
        assert list(scores.values()) == sorted(scores.values(), reverse=True), name
        for rank, pid in enumerate(scores):
            want[pid] = want.get(pid, 0.0) + 1 / (61 + rank)
    assert set(parts) == {"bm25", "dense"}
    assert [p for p, _ in ranked] == sorted(want, key=lambda p: (-want[p], p))
    assert [sc for _, sc in ranked] == pytest.approx([want[p] for p, _ in ranked])
    hits = s.search(q, k=3)
    assert hits[0].doc_id == KK and hits[0].score == pytest.approx(want[hits[0].chunk_id])
    wsum = Searcher(fake_config(fake_seed_home), fake_embedder).search(q, k=3)
    assert wsum[0].score > 2 / 61 >= hits[0].score  # a different scale: RRF really ran


def test_incremental_add_change_remove(fake_work_home, fake_embedder):
    cfg = fake_config(fake_work_home)
    counting = CountingEmbedder(fake_embedder)
    new = Document(doc_id="kmtest000000001", title="ศูนย์เรียนรู้เกษตรทฤษฎีใหม่ บ้านโนนสวรรค์",
                   body="วิสาหกิจชุมชนบ้านโนนสวรรค์ จังหวัดมหาสารคาม ใช้ปุ๋ยอินทรีย์ชีวภาพ "
                        "ลดต้นทุนการผลิตข้าวหอมมะลิได้ร้อยละ ๓๐", source="test")
    with DocumentStore(cfg.corpus_db) as store:
        store.upsert([new])
    before = indexdir.live_build(fake_work_home)
    st = update_index(cfg, embedder=counting)
    assert not st.full and st.added == 1 and counting.passages == 1
    # the superseded build stays for 2 x reload_seconds (a server may still read it)
    assert indexdir.live_build(fake_work_home) != before and before.exists()
    s = Searcher(cfg, fake_embedder)
    hit = s.search("ปุ๋ยอินทรีย์ข้าวหอมมะลิ มหาสารคาม", k=1)[0]
    assert hit.doc_id == new.doc_id and hit.title == new.title
    # changed text replaces the old passages; removed documents disappear
    with DocumentStore(cfg.corpus_db) as store:
        store.upsert([Document(doc_id=new.doc_id, title=new.title,
                               body="โครงการธนาคารน้ำใต้ดิน ลดปัญหาน้ำท่วมและภัยแล้ง", source="test")])
        store.delete([KK])
    st = update_index(cfg, embedder=counting)
    assert st.removed == 1 and st.passages < 30
    s2 = Searcher(cfg, fake_embedder)
    assert s2.search("ธนาคารน้ำใต้ดิน", k=1, mode="bm25")[0].doc_id == new.doc_id
    # the old words are gone (Thai 4-grams may still match other passages weakly)
    assert not any("ปุ๋ยอินทรีย์" in h.text or h.doc_id == new.doc_id
                   for h in s2.search("ปุ๋ยอินทรีย์ข้าวหอมมะลิ", k=3, mode="bm25"))
    assert all(h.doc_id != KK for h in s2.search("ขอนแก่นศึกษา", k=10))
    assert s2.vectors.count() == s2.manifest["counts"]["passages"]


def test_build_that_fails_midway_leaves_live_index_intact(fake_work_home, fake_embedder):
    cfg = fake_config(fake_work_home)
    before = indexdir.live_build(fake_work_home)
    want = _ids(Searcher(cfg, fake_embedder).search("สมัชชาพังงา", k=3))

    def boom(stage, done, total):
        if stage == "embed":
            raise RuntimeError("disk on fire")
    with pytest.raises(RuntimeError):
        update_index(cfg, full=True, embedder=fake_embedder, progress=boom)
    assert indexdir.live_build(fake_work_home) == before
    assert not [p for p in (fake_work_home / "index.d").iterdir() if p.suffix == ".tmp"]
    assert _ids(Searcher(cfg, fake_embedder).search("สมัชชาพังงา", k=3)) == want


KILL_SCRIPT = r"""
import os, signal, sys
sys.path.insert(0, {root!r})
from km_search.settings import load_config
from indexer import update_index
cfg = load_config(home={home!r}, models_dir={models!r}, model="fake")
def prog(stage, done, total):
    if stage == "embed" and done >= {after}:
        os.kill(os.getpid(), signal.SIGKILL)
update_index(cfg, full=True, progress=prog)
"""


def test_killed_rebuild_keeps_old_index_and_resumes_from_cache(fake_work_home, fake_embedder):
    cfg = fake_config(fake_work_home)
    # new text, so the embedding cache has to do real work during the killed build
    with DocumentStore(cfg.corpus_db) as store:
        docs = list(store.iter_documents())
        for d in docs:
            d.body = d.body + "\nหมายเหตุ: ฉบับปรับปรุง"
            d.hash = ""
            d.__post_init__()
        store.upsert(docs)
    before = indexdir.live_build(fake_work_home)
    script = KILL_SCRIPT.format(root=str(ROOT), home=str(fake_work_home), models=str(MODELS), after=1)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert indexdir.live_build(fake_work_home) == before  # old build still live ...
    assert Searcher(cfg, fake_embedder).search("ขอนแก่นศึกษา", k=1)[0].doc_id == KK  # ... and usable
    assert any(p.suffix == ".tmp" for p in (fake_work_home / "index.d").iterdir())
    counting = CountingEmbedder(fake_embedder)
    st = update_index(cfg, embedder=counting)
    assert st.passages > 0 and counting.passages < st.passages  # resumed from the cache
    assert not any(p.suffix == ".tmp" for p in (fake_work_home / "index.d").iterdir())
    assert "ฉบับปรับปรุง" in Searcher(cfg, fake_embedder).search("ฉบับปรับปรุง", k=1, mode="bm25")[0].text


def test_corrupt_and_mismatched_index_give_clear_errors(fake_work_home, fake_embedder):
    cfg = fake_config(fake_work_home)
    build = indexdir.live_build(fake_work_home)
    (build / "vectors.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(indexdir.IndexCorrupt, match="rebuild"):
        Searcher(cfg, fake_embedder)
    with pytest.raises(indexdir.IndexCorrupt, match="checksum"):
        indexdir.read_manifest(build, verify=True)
    (build / "manifest.json").write_text("{broken")
    with pytest.raises(indexdir.IndexCorrupt, match="unreadable"):
        Searcher(cfg, fake_embedder)
    # a corrupt live index is replaced by a full build; documents are not lost
    st = update_index(cfg, embedder=fake_embedder)
    assert st.full and st.documents == 5
    man_path = indexdir.live_build(fake_work_home) / "manifest.json"
    man = json.loads(man_path.read_text())
    man["model"]["fingerprint"], man["model"]["name"] = "0" * 16, "intfloat/multilingual-e5-base"
    man_path.write_text(json.dumps(man))
    with pytest.raises(indexdir.IndexMismatch, match="multilingual-e5-base"):
        Searcher(cfg, fake_embedder).search("ขอนแก่นศึกษา", mode="dense")
    # bm25-only search does not need the model and still works
    assert Searcher(cfg, fake_embedder).search("ขอนแก่นศึกษา", mode="bm25")[0].doc_id == KK


def test_missing_index(tmp_path, fake_embedder):
    with pytest.raises(indexdir.IndexMissing, match="km-search index"):
        Searcher(fake_config(tmp_path / "empty"), fake_embedder)


def _province_docs(n: int) -> list[Document]:
    """n one-passage documents of our own Thai text, one per province, source 'test'."""
    from km_search.thai.provinces import PROVINCES

    topics = ["ธนาคารน้ำใต้ดิน", "ตลาดชุมชนออนไลน์", "ศูนย์ดูแลผู้สูงอายุ", "โรงเรียนปลอดขยะ",
              "กองทุนหมู่บ้านดิจิทัล"]
    return [Document(doc_id=f"prov{i:012d}", title=f"{topics[i % 5]} จังหวัด{p}",
                     body=f"ชาวจังหวัด{p}ร่วมกันทำโครงการ{topics[i % 5]} "
                          f"ในปีงบประมาณ {2560 + i % 7} มีครัวเรือนเข้าร่วม {10 * (i + 3)} ครัวเรือน",
                     published=f"{2017 + i % 7}-0{1 + i % 9}-15", source="test")
            for i, p in enumerate(PROVINCES[:n])]


def test_incremental_switch_from_flat_to_ivf_then_delete_from_ivf(fake_work_home, fake_embedder):
    """Past flat_limit an incremental update rebuilds the dense index as IVF; a later delete
    removes the documents' vectors from the IVF index (remove_ids) without a full build."""
    import sqlite3

    import faiss

    from km_search.retrieval import dense

    cfg = fake_config(fake_work_home, flat_limit=60)  # seeds: 21 passages; IVF trains >= 64 lists
    assert indexdir.read_manifest(indexdir.live_build(fake_work_home))["dense"]["kind"] == "flat"
    docs = _province_docs(60)
    with DocumentStore(cfg.corpus_db) as store:
        store.upsert(docs)
    st = update_index(cfg, embedder=fake_embedder)
    assert not st.full and st.added == 60
    man = indexdir.read_manifest(indexdir.live_build(fake_work_home), verify=True)
    assert man["dense"] == {"kind": "ivf-sq8", "ntotal": st.passages} and st.passages > 60
    s = Searcher(cfg, fake_embedder)
    assert dense.kind(s.vectors.index) == "ivf-sq8"
    ivf = faiss.extract_index_ivf(s.vectors.index)
    ivf.nprobe = ivf.nlist  # every list: the search is exhaustive, so absent means removed
    assert s.search(docs[22].title, k=1)[0].doc_id == docs[22].doc_id
    # the source filter keeps exactly the added documents, the seed filter exactly the seeds
    q = "โครงการของจังหวัด"
    assert {h.doc_id for h in s.search(q, k=100, filters=Filters(source="test"),
                                       max_per_doc=1)} <= {d.doc_id for d in docs}
    assert len(s.search(q, k=100, filters=Filters(source="test"), max_per_doc=1)) >= 50
    assert {h.doc_id for h in s.search(q, k=100, filters=Filters(source="seed"))} <= {
        "6fcee9b62a8409b7", "060103db4d9e3160", "d7880ede011fff30", "c548de22d8cc4494",
        "7b7b360df6402293"}

    gone = [d.doc_id for d in docs[:10]] + [KK]
    db = sqlite3.connect(indexdir.live_build(fake_work_home) / "passages.db")
    gone_pids = {r[0] for r in db.execute(
        f"SELECT pid FROM passages WHERE doc_id IN ({','.join('?' * len(gone))})", gone)}
    db.close()
    with DocumentStore(cfg.corpus_db) as store:
        store.delete(gone)
    counting = CountingEmbedder(fake_embedder)
    st2 = update_index(cfg, embedder=counting)
    assert not st2.full and st2.removed == 11 and counting.passages == 0
    assert st2.passages == st.passages - len(gone_pids)
    s2 = Searcher(cfg, fake_embedder)
    assert dense.kind(s2.vectors.index) == "ivf-sq8" and s2.vectors.count() == st2.passages
    ivf2 = faiss.extract_index_ivf(s2.vectors.index)
    ivf2.nprobe = ivf2.nlist
    qv = fake_embedder.encode_queries(["ศูนย์ดูแลผู้สูงอายุ ธนาคารน้ำใต้ดิน ขอนแก่นศึกษา"])
    _, ids = s2.vectors.index.search(qv, s2.vectors.count())
    found = set(ids[0][ids[0] >= 0].tolist())
    assert len(found) == st2.passages and not found & gone_pids
    assert all(h.doc_id not in gone for h in s2.search("ขอนแก่นศึกษา ศูนย์ดูแลผู้สูงอายุ", k=50))

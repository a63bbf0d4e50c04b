"""The milvus backend on Milvus Lite (the embedded engine, same client as a server):
it must retrieve exactly what the local bm25s + FAISS backend retrieves."""
from __future__ import annotations

import pytest

from tests.conftest import _seed_index, fake_config
from indexer import update_index
from km_search import indexdir
from km_search.docstore import DocumentStore
from km_search.lessons import similar_cases
from km_search.models import Document
from km_search.retrieval.backend import get_backend
from km_search.retrieval.filters import Filter
from km_search.search import Filters, Searcher

KK = "6fcee9b62a8409b7"
QUERIES = ["ปัจจัยความสำเร็จ ขอนแก่นศึกษา", "ระบบราชการ ๔.๐", "success factors for Khon Kaen Study",
           "การมีส่วนร่วมของประชาชน"]


@pytest.fixture(scope="module")
def milvus_home(tmp_path_factory, fake_embedder):
    home = tmp_path_factory.mktemp("milvushome")
    return _seed_index(home, fake_config(home, backend="milvus"), fake_embedder)


def _searchers(local_home, milvus_home, emb):
    return (Searcher(fake_config(local_home), emb),
            Searcher(fake_config(milvus_home, backend="milvus"), emb))


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_milvus_ranks_and_scores_like_the_local_backend(fake_seed_home, milvus_home,
                                                         fake_embedder, mode):
    local, milvus = _searchers(fake_seed_home, milvus_home, fake_embedder)
    assert milvus.manifest["backend"] == "milvus" and local.manifest["backend"] == "local"
    for q in QUERIES:
        a, _, _ = local.retrieve(q, mode, 30)
        b, _, _ = milvus.retrieve(q, mode, 30)
        assert [p for p, _ in a] == [p for p, _ in b], (q, mode)
        assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-5)


@pytest.mark.parametrize("filters", [Filters(province="พังงา"), Filters(date_from="2022-01-01"),
                                     Filters(date_to="2021-12-31", publisher="ก.พ.ร."),
                                     Filters(source="seed"), Filters(date_to="1999-01-01")])
def test_filters_select_the_same_passages(fake_seed_home, milvus_home, fake_embedder, filters):
    local, milvus = _searchers(fake_seed_home, milvus_home, fake_embedder)
    for mode in ("bm25", "hybrid"):
        a = local.search("ระบบราชการ 4.0 ขอนแก่น", k=20, mode=mode, filters=filters)
        b = milvus.search("ระบบราชการ 4.0 ขอนแก่น", k=20, mode=mode, filters=filters)
        assert [(h.doc_id, h.ordinal) for h in a] == [(h.doc_id, h.ordinal) for h in b]
        assert bool(a) == (filters.date_to != "1999-01-01")  # the filter selected something


def test_similar_cases_read_vectors_back_from_milvus(fake_seed_home, milvus_home, fake_embedder):
    local, milvus = _searchers(fake_seed_home, milvus_home, fake_embedder)
    a, b = similar_cases(local, KK, 4), similar_cases(milvus, KK, 4)
    assert [r["doc_id"] for r in a] == [r["doc_id"] for r in b] and len(b) == 4
    assert [r["score"] for r in a] == pytest.approx([r["score"] for r in b], abs=1e-5)


def test_updates_rebuild_collections_and_a_backend_switch_rebuilds(milvus_home, fake_embedder,
                                                                    tmp_path):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(milvus_home, home, symlinks=True)
    cfg = fake_config(home, backend="milvus", reload_seconds=0)  # no grace: old builds go
    before = indexdir.live_build(home)
    with DocumentStore(cfg.corpus_db) as store:
        store.upsert([Document(doc_id="kmtest000000002", title="ธนาคารน้ำใต้ดิน ตำบลโนนสวรรค์",
                               body="ชุมชนขุดบ่อธนาคารน้ำใต้ดินลดน้ำท่วมขังในฤดูฝน ๒๕๖๕",
                               provinces=["มหาสารคาม"], source="test")])
        store.delete([KK])
    st = update_index(cfg, embedder=fake_embedder)
    assert not st.full and st.added == 1 and st.removed == 1
    assert not before.exists()  # the old build (and its Lite folder) went at publish
    s = Searcher(cfg, fake_embedder)
    assert s.search("ธนาคารน้ำใต้ดิน", k=1, mode="bm25")[0].doc_id == "kmtest000000002"
    assert s.search("น้ำท่วม", k=3, filters=Filters(province="มหาสารคาม"))[0].doc_id == "kmtest000000002"
    assert all(h.doc_id != KK for h in s.search("ขอนแก่นศึกษา", k=20))
    assert s.vectors.count() == s.lexical.count() == s.manifest["counts"]["passages"]
    st = update_index(fake_config(home, reload_seconds=0), embedder=fake_embedder)  # to local
    assert st.full and any("backend" in n for n in st.notes)
    assert Searcher(fake_config(home), fake_embedder).manifest["backend"] == "local"


def test_unknown_backend_and_filter_field_are_refused():
    with pytest.raises(ValueError, match="milvus"):
        get_backend("elastic")
    with pytest.raises(ValueError, match="unknown filter field"):
        Filter.of(("colour", "eq", "red"))


def test_filter_expressions_quote_thai_and_quotes():
    f = Filter.of(("province", "has", "พังงา"), ("publisher", "contains", 'ก.พ.ร. "ภาค" 50%'),
                  ("published", "gte", "2021-10-01"))
    where, args = f.to_sql()
    assert where == "d.provinces LIKE ? AND d.publisher LIKE ? AND d.published >= ?"
    assert args == ['%"พังงา"%', '%ก.พ.ร. "ภาค" 50%%', "2021-10-01"]
    assert f.to_milvus() == ('ARRAY_CONTAINS(provinces, "พังงา") and publisher like '
                             '"%ก.พ.ร. \\"ภาค\\" 50\\\\%%" and (published != 0 and published >= 20211001)')


def test_exact_ties_go_by_pid_on_both_backends(tmp_path, fake_embedder):
    """The same passage text under several documents ties exactly; FAISS and Milvus order
    such ties differently (24 of the 739 iapp test questions' dense top-10s differed only
    so), so both go by pid (the newest first) and the backend does not decide which
    document is R@1."""
    import numpy as np

    from km_search.retrieval.backend import tie_order

    ids, scores = tie_order((np.array([9, 5, 2, 7]), np.array([0.5, 1.0, 1.0, 0.9], np.float32)))
    assert ids.tolist() == [5, 2, 7, 9] and scores.tolist() == pytest.approx([1, 1, 0.9, 0.5])
    same = dict(title="ธนาคารน้ำใต้ดิน ตำบลโนนสวรรค์", body="ชุมชนขุดบ่อธนาคารน้ำใต้ดิน "
                "ลดน้ำท่วมขังในฤดูฝน ๒๕๖๕ และเก็บน้ำไว้ใช้ในฤดูแล้ง", source="test")
    docs = [Document(doc_id=f"kmdup{i}", **same) for i in (3, 1, 2)] + [
        Document(doc_id="kmother", title="สมัชชาพังงา", body="ประชาชนร่วมกำหนดแผนของจังหวัด",
                 source="test")]
    got = {}
    for backend in ("local", "milvus"):
        home = tmp_path / backend
        cfg = fake_config(home, backend=backend)
        with DocumentStore(cfg.corpus_db) as store:
            store.upsert(docs)
        update_index(cfg, embedder=fake_embedder)
        s = Searcher(cfg, fake_embedder)
        for mode in ("bm25", "dense"):
            ranked, _, _ = s.retrieve("ธนาคารน้ำใต้ดิน ฤดูฝน", mode, 10)
            top = ranked[:3]
            assert len({round(sc, 5) for _, sc in top}) == 1, (backend, mode, top)  # a real tie
            assert [p for p, _ in top] == sorted((p for p, _ in top), reverse=True), (backend, mode, top)
            got[backend, mode] = [p for p, _ in ranked]
    assert got["local", "bm25"] == got["milvus", "bm25"] and got["local", "dense"] == got["milvus", "dense"]

"""The Searcher's document view: what the API's /documents route shows, from the library."""
from __future__ import annotations

from km_search.search import Searcher
from tests.conftest import fake_config

KK = "6fcee9b62a8409b7"  # seed 000: ขอนแก่นศึกษา


def test_document_gives_the_stored_document_and_where_its_passages_lie(fake_seed_home,
                                                                        fake_embedder):
    s = Searcher(fake_config(fake_seed_home), fake_embedder)
    doc, spans = s.document(KK)
    assert doc.doc_id == KK and "ขอนแก่นศึกษา" in doc.body
    assert len(spans) > 1 and [p.ordinal for p in spans] == list(range(len(spans)))
    hit = s.search("ขอนแก่นศึกษา", k=1)[0]
    shown = {p.pid: doc.body[p.start:p.end] for p in spans}
    assert hit.doc_id == KK and hit.text == shown[hit.chunk_id]  # the cited passage, in place
    assert s.document("0000000000000000") is None


def test_stored_text_facets_give_the_facets_the_hit_text_gives(fake_work_home, fake_embedder):
    """The indexer stores each passage's text facets (agencies, PMQA, Gov 4.0) so a search
    response does not run the agency patterns over every hit: counted from the stored
    values, the facets equal those computed from the hits' text. A build made before
    they were stored (no table) still answers, from the text."""
    import sqlite3

    from km_search import indexdir
    from km_search.lessons import facet_counts

    cfg = fake_config(fake_work_home)
    s = Searcher(cfg, fake_embedder)
    hits = [h for q in ("ขอนแก่นศึกษา", "PMQA 4.0 หมวด 4", "สำนักงาน ก.พ.ร. รางวัล", "กรมควบคุมโรค")
            for h in s.search(q, k=10, max_per_doc=3)]
    stored = s.passage_facets([h.chunk_id for h in hits])
    assert set(stored) == {h.chunk_id for h in hits}
    assert any(f["agency"] for f in stored.values()) and any(f["pmqa"] for f in stored.values())
    assert facet_counts(hits, stored=stored) == facet_counts(hits)
    assert facet_counts(hits, stored=stored)["agency"]
    marked = {p: {**f, "agency": ["กรมทดสอบ"]} for p, f in stored.items()}  # really read
    assert "กรมทดสอบ" in facet_counts(hits, stored=marked)["agency"]

    db = sqlite3.connect(indexdir.live_build(fake_work_home) / indexdir.PASSAGES)
    db.execute("DROP TABLE passage_facets")
    db.commit()
    db.close()
    old = Searcher(cfg, fake_embedder)
    assert old.passage_facets([h.chunk_id for h in hits]) == {}

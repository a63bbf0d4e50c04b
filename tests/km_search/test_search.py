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

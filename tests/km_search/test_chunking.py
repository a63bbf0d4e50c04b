from corpus.seeds import bundled_seeds
from km_search.chunking import chunk_document, chunk_text, passage_input
from km_search.models import Document
from km_search.thai import split_sentences, word_count


def _seed(doc_id="6fcee9b62a8409b7"):
    return next(d for d in bundled_seeds() if d.doc_id == doc_id)


def test_chunks_cover_every_sentence_within_the_word_budget():
    doc = _seed()
    spans = chunk_text(doc.body, target_words=80, overlap=1)
    assert len(spans) > 3
    for s, e in split_sentences(doc.body):
        assert any(a <= s and e <= b for a, b in spans), doc.body[s:e]
    for a, b in spans:
        assert word_count(doc.body[a:b]) <= 80 + 5


def test_neighbouring_chunks_overlap_by_one_sentence():
    doc = _seed()
    spans = chunk_text(doc.body, target_words=80, overlap=1)
    overlaps = sum(1 for (a1, b1), (a2, b2) in zip(spans, spans[1:]) if a2 < b1)
    assert overlaps == len(spans) - 1
    no = chunk_text(doc.body, target_words=80, overlap=0)
    assert all(a2 >= b1 for (a1, b1), (a2, b2) in zip(no, no[1:]))


def test_title_travels_with_each_chunk_and_offsets_point_into_body():
    doc = _seed()
    chunks = chunk_document(doc, 100, 1)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.title == doc.title
        assert doc.body[c.start:c.end] == c.text
        assert passage_input(c).startswith(doc.title + "\n")
    assert any("ขอนแก่นศึกษา" in c.text for c in chunks)


def test_a_sentence_longer_than_the_budget_is_cut_at_word_boundaries():
    body = "การพัฒนาองค์การสู่ระบบราชการ" * 60  # one giant 'sentence', no spaces
    chunks = chunk_document(Document("x", "t", body), 50, 0)
    assert len(chunks) > 3
    assert "".join(c.text for c in chunks) == body


def test_empty_body_gives_title_only_passage_and_empty_doc_nothing():
    assert [c.text for c in chunk_document(Document("x", "หัวข้อ", ""), 100)] == ["หัวข้อ"]
    assert chunk_document(Document("y", " ", " \n "), 100) == []

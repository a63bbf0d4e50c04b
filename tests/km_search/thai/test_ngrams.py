"""Thai character n-grams as extra BM25 tokens (KM_SEARCH_THAI_NGRAMS)."""
from __future__ import annotations

from indexer import update_index
from km_search import indexdir
from km_search.retrieval.bm25 import BM25Index
from km_search.search import Searcher, query_tokens
from km_search.thai import tokenize
from km_search.thai.ngrams import MARK, is_ngram, thai_ngrams, with_ngrams
from tests.conftest import fake_config

# our own sentences: national anthems of four countries, the first one longest
ANTHEMS = ["เพลงชาติสิงคโปร์ใช้ภาษามลายูเป็นเนื้อร้อง นักเรียนขับร้องในพิธีหน้าเสาธงของโรงเรียน"
           "ทุกเช้าก่อนเข้าเรียน",
           "เพลงชาติไทยประพันธ์ทำนองโดยพระเจนดุริยางค์",
           "เพลงชาติมาเลเซียมีทำนองมาจากเพลงพื้นเมือง",
           "เพลงชาติลาวเปิดทางวิทยุทุกเช้า"]
TYPO = "เพลงชาติสิงค์โปร"  # สิงคโปร์ with the thanthakhat typed one letter early


def test_runs_of_thai_words_are_joined_so_the_cut_does_not_matter():
    one, two = thai_ngrams(["ปรุงอาหาร"], 3), thai_ngrams(["ปรุง", "อาหาร"], 3)
    assert one == two == [MARK + g for g in ("ปรุ", "รุง", "ุงอ", "งอา", "อาห", "าหา", "หาร")]
    # a Latin word or a number ends a run: no n-gram spans it
    split = thai_ngrams(["ปรุง", "PMQA", "อาหาร", "2564", "กิน"], 3)
    assert split == thai_ngrams(["ปรุง"], 3) + thai_ngrams(["อาหาร"], 3) + thai_ngrams(["กิน"], 3)
    assert all(MARK + "งอ" not in g for g in split)
    assert thai_ngrams(["กิน"], 4) == []  # shorter than n: the word token matches it whole
    assert thai_ngrams(["ปรุงอาหาร"], 1) == [] and thai_ngrams(["ปรุงอาหาร"], 0) == []
    words = tokenize("ปรุงอาหาร")
    assert with_ngrams(words, 0) == words
    assert with_ngrams(words, 4)[: len(words)] == words


def test_no_word_token_can_be_taken_for_an_ngram():
    toks = tokenize(f"{MARK}ทดสอบ {MARK}abc ราคา{MARK}๒๕๖๔ บาท")
    assert toks and not any(is_ngram(t) for t in toks)
    assert all(is_ngram(g) for g in thai_ngrams(toks, 3))


def test_a_misspelt_name_is_found_through_its_ngrams():
    """The typo shares no word token with สิงคโปร์, so BM25 over words ranks the Singapore
    passage last (it only matches เพลงชาติ, and is the longest); its n-grams put it first."""
    words = BM25Index.build([tokenize(p) for p in ANTHEMS], [1, 2, 3, 4])
    assert "สิงคโปร์" in tokenize(ANTHEMS[0]) and "สิงคโปร์" not in tokenize(TYPO)
    assert words.search(tokenize(TYPO), 4)[0][0] != 1
    for n in (3, 4):
        grams = BM25Index.build([with_ngrams(tokenize(p), n) for p in ANTHEMS], [1, 2, 3, 4])
        for w in (1.0, 0.25):
            assert grams.search(with_ngrams(tokenize(TYPO), n), 4, None, w)[0][0] == 1


def test_ngram_weight_scales_only_the_ngram_terms():
    idx = BM25Index.build([with_ngrams(tokenize(p), 4) for p in ANTHEMS], [1, 2, 3, 4])
    words = tokenize(TYPO)
    grams = thai_ngrams(words, 4)
    only_words = dict(zip(*(a.tolist() for a in idx.search(words, 4))))
    only_grams = dict(zip(*(a.tolist() for a in idx.search(grams, 4))))
    zero = idx.search(words + grams, 4, None, 0.0)
    assert dict(zip(*(a.tolist() for a in zero))) == only_words
    half = dict(zip(*(a.tolist() for a in idx.search(words + grams, 4, None, 0.5))))
    for pid, s in half.items():
        assert abs(s - (only_words.get(pid, 0.0) + 0.5 * only_grams.get(pid, 0.0))) < 1e-4
    # the idf mass of coverage weighs n-grams the same way
    idf = idx.idf(words + grams, 0.25)
    assert all(abs(idf[g] - 0.25 * idx.idf([g])[g]) < 1e-6 for g in grams)


def test_the_index_records_its_ngrams_and_queries_follow_the_build(fake_work_home):
    """Switching the setting rebuilds in full; the query side cuts n-grams as the loaded
    build did (its manifest), whatever the setting says later."""
    off = fake_config(fake_work_home, thai_ngrams=0)
    update_index(off)
    on = fake_config(fake_work_home, thai_ngrams=4, thai_ngram_weight=0.25)
    st = update_index(on)
    assert st.full and any("tokenizer" in n for n in st.notes)
    man = indexdir.read_manifest(indexdir.live_build(on.home_path))
    assert man["tokenizer"]["ngrams"] == 4
    s = Searcher(on)
    q = "ขอนแก่นศึกษา"
    assert s.probe(q, "bm25").tokens == query_tokens(q, s.expand, 4)
    assert any(is_ngram(t) for t in s.probe(q, "bm25").tokens)
    hits = s.search(q, k=3, mode="hybrid")
    assert hits and "ขอนแก่น" in hits[0].text
    # highlights are words, never n-grams
    assert all(not is_ngram(hits[0].text[a:b]) for a, b in hits[0].highlights)
    # the build decides, not the setting: a searcher configured without n-grams still
    # cuts them for this build (else its queries would miss the n-gram half of the index)
    assert any(is_ngram(t) for t in Searcher(fake_config(fake_work_home)).probe(q, "bm25").tokens)
    assert update_index(on).unchanged


def test_large_builds_leave_ngrams_out(fake_work_home):
    """Past thai_ngrams_max_passages the build indexes words only (n-grams make BM25 several
    times bigger and slower), records 0, and its queries then cut no n-grams."""
    from km_search.thai.ngrams import index_ngrams

    cfg = fake_config(fake_work_home, thai_ngrams=4, thai_ngrams_max_passages=10)
    assert index_ngrams(cfg, 10) == 4 and index_ngrams(cfg, 11) == 0
    assert index_ngrams(fake_config(fake_work_home, thai_ngrams=4, thai_ngrams_max_passages=0), 10**7) == 4
    assert index_ngrams(fake_config(fake_work_home, thai_ngrams=0), 5) == 0
    update_index(cfg)
    man = indexdir.read_manifest(indexdir.live_build(cfg.home_path))
    assert man["counts"]["passages"] > 10 and man["tokenizer"]["ngrams"] == 0
    assert not any(is_ngram(t) for t in Searcher(cfg).probe("ขอนแก่นศึกษา", "bm25").tokens)
    assert update_index(cfg).unchanged

"""English forms of the provinces a passage names, as BM25 tokens (KM_SEARCH_PLACES_EN)."""
from __future__ import annotations

from indexer import update_index
from km_search.search import Searcher
from km_search.thai import tokenize
from km_search.thai.places_en import passage_tokens, place_tokens
from tests.conftest import fake_config


def test_english_forms_of_named_provinces_from_the_gazetteer():
    text = "ผู้ว่าราชการจังหวัดนครราชสีมาประชุมร่วมกับจังหวัดขอนแก่น ที่สุราษฎร์ธานี"
    got = place_tokens(text)
    # every English form of each named province, including the short form Korat
    assert got == ["nakhon", "ratchasima", "korat", "khon", "kaen", "surat", "thani"]
    assert place_tokens("ผลการดำเนินงานด้านการจัดการความรู้ ๒๕๖๔") == []
    # เลย is a common word ("at all"): a province only after จังหวัด
    assert place_tokens("ไม่เคยไปเลย") == [] and place_tokens("จังหวัดเลย") == ["loei"]
    assert passage_tokens(text) == tokenize(text) + got
    assert passage_tokens(text, places=False) == tokenize(text)


def test_an_english_province_name_finds_its_thai_passages_without_the_glossary(fake_work_home):
    """Glossary expansion off: only the index-time forms can carry "Phang Nga" to BM25.
    Switching the setting rebuilds the index in full (the build records it)."""
    off = fake_config(fake_work_home, expand="", places_en=0)
    st = update_index(off)
    assert st.full and any("tokenizer" in n for n in st.notes)
    assert not any("พังงา" in h.text for h in Searcher(off).search("Phang Nga", k=3, mode="bm25"))
    on = fake_config(fake_work_home, expand="", places_en=1)
    assert update_index(on).full
    hits = Searcher(on).search("Phang Nga", k=3, mode="bm25")
    assert hits and all("พังงา" in h.text for h in hits)
    assert update_index(on).unchanged

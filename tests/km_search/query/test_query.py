"""Query side: understanding (dates, years, provinces, agencies, PMQA), follow-up
rewriting, English stop words and adaptive fusion. No model needed."""
from __future__ import annotations

import numpy as np
import pytest

from km_search.query.rewrite import is_follow_up, rewrite
from km_search.query.understand import plan, understand
from km_search.retrieval.bm25 import BM25Index
from km_search.retrieval.fusion import Adaptive, Evidence, adaptive, fuse, latin_share, top_gap
from km_search.search import query_tokens
from km_search.thai import tokenize


def _kv(q: str) -> set[tuple[str, str, str]]:
    return {(i.kind, i.value, i.mode) for i in understand(q)}


# -- years, fiscal years, dates ---------------------------------------------------------
@pytest.mark.parametrize("query, kind, value", [
    ("รายงานผลการดำเนินงาน ปี 2566", "year", "2566"),
    ("ผลการดำเนินงานปีงบประมาณ 65", "fiscal_year", "2565"),
    ("แผนปฏิบัติราชการ ปีงบ ๖๖", "fiscal_year", "2566"),
    ("OPDC annual report FY2022", "fiscal_year", "2565"),
    ("ปีงบประมาณ พ.ศ. 2567 งบลงทุน", "fiscal_year", "2567"),
    ("คำสั่งแต่งตั้ง พ.ศ. ๒๕๖๔", "year", "2564"),
    ("knowledge sharing workshops in 2021", "year", "2564"),
    ("ค.ศ. 2020 โควิด", "year", "2563"),
])
def test_years_and_fiscal_years(query, kind, value):
    items = [i for i in understand(query) if i.kind in ("year", "fiscal_year")]
    assert [(i.kind, i.value) for i in items] == [(kind, value)]
    assert items[0].text in __import__("km_search.thai.normalize", fromlist=["x"]).thai_to_arabic_digits(query)


def test_fiscal_year_filters_by_the_october_to_september_range():
    p = plan("ผลการดำเนินงานปีงบประมาณ 65")
    assert (p.date_from, p.date_to) == ("2021-10-01", "2022-09-30")
    assert p.items[0].mode == "filter"


def test_a_full_thai_date_is_one_date_not_also_a_year():
    items = understand("ประชุมวันที่ 8 ธันวาคม พ.ศ. ๒๕๖๔ ที่ศาลากลาง")
    assert [(i.kind, i.value) for i in items] == [("date", "2021-12-08")]


def test_bare_numbers_are_not_years():
    assert understand("ผู้เข้าร่วม 2566 คน") == []
    assert understand("we trained 2021 people") == []


# -- provinces ----------------------------------------------------------------------------
@pytest.mark.parametrize("query, value, mode", [
    ("จังหวัดขอนแก่นทำอย่างไรจึงได้รางวัล", "ขอนแก่น", "filter"),
    ("ขอนแก่นศึกษา ปัจจัยความสำเร็จ", "ขอนแก่น", "boost"),
    ("จ.พังงา สมัชชา", "พังงา", "filter"),
    ("โคราช นวัตกรรม", "นครราชสีมา", "boost"),
    ("กทม. ฝุ่น PM2.5", "กรุงเทพมหานคร", "boost"),
    ("Khon Kaen Study success factors", "ขอนแก่น", "boost"),
    ("civil society in Phang Nga province", "พังงา", "filter"),
    ("Surat Thani fisheries", "สุราษฎร์ธานี", "boost"),
    ("Korat innovation", "นครราชสีมา", "boost"),
    ("จังหวัดเลย ท่องเที่ยว", "เลย", "filter"),
])
def test_provinces_thai_english_and_short_forms(query, value, mode):
    assert ("province", value, mode) in _kv(query)


@pytest.mark.parametrize("query", [
    "ทำไมไม่ได้รางวัลเลย",          # เลย = "at all"
    "การแพร่ระบาดของโรคโควิด",        # แพร่ = "to spread"
    "วิธีตากผ้าให้แห้งเร็ว",             # ตาก = "to dry"
    "the result was nan in the spreadsheet",
])
def test_province_words_that_are_not_places(query):
    assert not [i for i in understand(query) if i.kind == "province"]


def test_ignored_items_are_dropped_and_filters_go_with_them():
    p = plan("จังหวัดขอนแก่นทำอย่างไร", ["province:ขอนแก่น"])
    assert p.items == [] and p.province is None
    assert plan("จังหวัดขอนแก่นทำอย่างไร").province == "ขอนแก่น"


# -- agencies and PMQA ------------------------------------------------------------------
@pytest.mark.parametrize("query, name", [
    ("โครงการของ พช. ปี 2565", "กรมการพัฒนาชุมชน"),
    ("สำนักงาน ก.พ.ร. เปิดรับสมัครรางวัล", "สำนักงาน ก.พ.ร."),
    ("หนังสือเวียน สป.มท. เรื่องการจัดการความรู้", "สำนักงานปลัดกระทรวงมหาดไทย"),
    ("Community Development Department village funds", "กรมการพัฒนาชุมชน"),
])
def test_agencies_and_abbreviations_boost_their_full_name(query, name):
    assert ("agency", name, "boost") in _kv(query)
    assert name in plan(query).boost_terms or name in query


def test_sp_mt_is_not_also_the_ministry_abbreviation():
    names = [i.value for i in understand("สป.มท. จัดอบรม") if i.kind == "agency"]
    assert names == ["สำนักงานปลัดกระทรวงมหาดไทย"]


def test_pmqa_category():
    items = [i for i in understand("PMQA 4.0 หมวด ๔ ทำอย่างไร") if i.kind == "pmqa"]
    assert [(i.value, i.mode) for i in items] == [("4", "boost")]
    assert any("การจัดการความรู้" in t for t in plan("PMQA 4.0 หมวด 4").boost_terms)


# -- follow-ups ---------------------------------------------------------------------------
KK_Q = "จังหวัดขอนแก่นทำอย่างไรจึงได้รางวัล PMQA 4.0"


@pytest.mark.parametrize("follow, expected", [
    ("แล้วพังงาล่ะ", "จังหวัดพังงาทำอย่างไรจึงได้รางวัล PMQA 4.0"),
    ("ส่วนจังหวัดพังงาล่ะครับ", "จังหวัดพังงาทำอย่างไรจึงได้รางวัล PMQA 4.0"),
    ("โคราชล่ะ", "จังหวัดนครราชสีมาทำอย่างไรจึงได้รางวัล PMQA 4.0"),
    ("What about Phang Nga?", "จังหวัดพังงาทำอย่างไรจึงได้รางวัล PMQA 4.0"),
    ("แล้วมีปัญหาอุปสรรคอะไรบ้าง", "จังหวัดขอนแก่น มีปัญหาอุปสรรคอะไรบ้าง"),
])
def test_follow_ups_carry_the_subject_and_replace_the_place(follow, expected):
    assert rewrite(follow, [KK_Q]) == expected


def test_standalone_questions_and_empty_history_are_not_rewritten():
    assert rewrite("การจัดการความรู้ของกรมควบคุมโรคคืออะไร", [KK_Q]) is None
    assert rewrite("แล้วพังงาล่ะ", []) is None
    assert not is_follow_up("ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร")


def test_a_chain_of_follow_ups_keeps_the_subject():
    hist = ["จังหวัดขอนแก่นทำอย่างไรจึงได้รางวัล", "แล้วพังงาล่ะ"]
    assert rewrite("แล้วสุราษฎร์ล่ะ", hist) == "จังหวัดสุราษฎร์ธานีทำอย่างไรจึงได้รางวัล"
    assert rewrite("แล้วปีงบ 66 ล่ะ", ["ผลการดำเนินงานปีงบประมาณ 65 ของ พช."]) == \
        "ผลการดำเนินงานปีงบ 66 ของ พช."


# -- English stop words and adaptive fusion ---------------------------------------------
def test_english_stop_words_leave_bm25_but_content_words_stay():
    toks = query_tokens("What are the success factors of the Khon Kaen Study?")
    assert "the" not in toks and "what" not in toks and "of" not in toks
    assert {"success", "factors", "khon", "kaen"} <= set(toks)
    assert query_tokens("what is it") == ["what", "is", "it"]  # nothing else left: keep them


def test_latin_share():
    assert latin_share("การจัดการความรู้") == 0.0
    assert latin_share("knowledge management") == 1.0
    assert 0 < latin_share("Mazda Axela ผลิตโดยบริษัทใด") < 1


def test_coverage_is_the_matched_share_of_the_query_idf_mass():
    docs = [tokenize(t) for t in ("ขอนแก่นศึกษา ปัจจัยความสำเร็จ", "สมัชชาพังงา เครือข่าย",
                                  "the report of the year", "ปัจจัย")]
    idx = BM25Index.build(docs, [10, 11, 12, 13])
    q = tokenize("ปัจจัยความสำเร็จ ขอนแก่น")
    cov = idx.coverage(q, np.array([10, 11, 13]))
    assert cov[0] == pytest.approx(1.0) and cov[1] == 0.0 and 0 < cov[2] < 1
    # a word the corpus lacks counts at full idf: it lowers every passage's coverage
    cov2 = idx.coverage(q + ["durian"], np.array([10]))
    assert 0 < cov2[0] < 1


def test_adaptive_fusion_discounts_a_top_bm25_hit_that_matched_little():
    bm = (np.array([1, 2]), np.array([4.0, 3.0]))  # 1: stray word, top BM25 score
    de = (np.array([2, 3]), np.array([0.9, 0.5]))
    ev = Evidence(coverage=np.array([0.1, 0.9]), latin=1.0)
    p = Adaptive(w_thai=0.6, w_latin=0.3, power=1.0)
    s = adaptive(bm, de, ev, p)
    assert s[1] == pytest.approx(0.3 * 1.0 * 0.1)
    assert s[2] == pytest.approx(0.3 * 0.75 * 0.9 + 0.7 * 1.0)
    assert [pid for pid, _ in fuse(bm, de, "adaptive", ev=ev, params=p)][0] == 2
    # old wsum: the stray-word hit keeps the full BM25 weight
    assert fuse(bm, de, "wsum", 0.6)[1][0] == 1
    # power 0 and equal weights reproduce wsum exactly
    same = adaptive(bm, de, ev, Adaptive(0.6, 0.6, 0.0))
    assert same == pytest.approx(dict(fuse(bm, de, "wsum", 0.6)))


def test_confidence_gap_moves_weight_to_the_retriever_whose_top_hit_stands_out():
    """BM25 sure (its top hit far above the rest), dense guessing (level scores): with the
    gap shift on, BM25's top hit wins; with it off (gap 0), dense's top hit wins."""
    bm = (np.array([1, 2, 3, 4]), np.array([10.0, 2.0, 1.9, 1.8]))
    de = (np.array([5, 6, 7, 1, 8]), np.array([0.90, 0.89, 0.88, 0.50, 0.10]))
    ev = Evidence(coverage=np.ones(4), latin=0.0)
    off = Adaptive(w_thai=0.3, w_latin=0.3, power=1.0, gap=0.0, gap_depth=2)
    on = Adaptive(w_thai=0.3, w_latin=0.3, power=1.0, gap=0.5, gap_depth=2)
    assert fuse(bm, de, "adaptive", ev=ev, params=off)[0][0] == 5
    assert fuse(bm, de, "adaptive", ev=ev, params=on)[0][0] == 1
    # the shift is gap * (bm25 top gap - dense top gap), measured at gap_depth
    bgap = 1.0 - 1.9 / 10.0
    dgap = 1.0 - (0.88 - 0.10) / 0.80
    w = 0.3 + 0.5 * (bgap - dgap)
    assert adaptive(bm, de, ev, on)[2] == pytest.approx(w * 0.2)
    # a retriever with one candidate has no gap; the weight never leaves [0.05, 0.95]
    assert top_gap(np.array([1.0]), 5) == 0.0
    huge = Adaptive(w_thai=0.9, w_latin=0.9, power=1.0, gap=100.0, gap_depth=2)
    assert adaptive(bm, de, ev, huge)[4] == pytest.approx(0.95 * 0.18)

"""Thai text: tokenisation of real seed text, normalisation damage, dates, sentences."""
import os
from pathlib import Path

import pytest

from tests.conftest import strict_skip
from km_search.thai import find_date, normalize, parse_thai_date, split_sentences, tokenize
from km_search.thai.glossary import expand_english
from km_search.thai.provinces import provinces_in

# the shared folder beside the repository (KM_SEARCH_SHARED points elsewhere)
SEEDS = Path(os.environ.get("KM_SEARCH_SHARED") or Path(__file__).resolve().parents[4] / "shared"
             ) / "seeds"


def test_km_words_are_not_cut_apart():
    # bm25s / FTS5 defaults give 'การจ', 'ดการความร'; we need real words.
    assert tokenize("การจัดการความรู้") == ["การ", "จัดการ", "ความรู้"]
    toks = tokenize("ขอนแก่นศึกษา “คู่เสี่ยว เกี่ยวก้อย” PMQA 4.0")
    assert toks[:2] == ["ขอนแก่น", "ศึกษา"]
    assert "pmqa" in toks and "4.0" in toks and "“" not in toks


def test_tokenise_real_seed_text():
    from corpus.seeds import bundled_seeds

    doc = next(d for d in bundled_seeds() if d.doc_id == "6fcee9b62a8409b7")
    toks = tokenize(doc.body)
    assert len(toks) > 500
    for word in ("ขอนแก่น", "ศึกษา", "สมัชชา", "พังงา", "ความสำเร็จ", "ประชาชน", "2564"):
        assert word in toks, word
    assert all(t.strip() == t and t for t in toks)


def test_thai_digits_fold_to_arabic_for_matching():
    assert tokenize("ปีงบประมาณ ๒๕๖๔") == tokenize("ปีงบประมาณ 2564")


def test_zero_width_and_control_characters_removed():
    assert normalize("การ\u200bจัดการ\u200cความรู้\ufeff") == "การจัดการความรู้"
    assert tokenize("ขอน\u200bแก่น") == ["ขอนแก่น"]
    assert "\x07" not in normalize("ทดสอบ\x07ระบบ")


def test_pdf_extraction_damage_is_repaired_where_possible():
    # NIKHAHIT + SARA AA written as two characters -> SARA AM
    assert normalize("ส\u0e4d\u0e32เร็จ") == "สำเร็จ"
    # a space can never precede a vowel or tone mark
    assert normalize("ส าเร็จ") == "สาเร็จ"
    assert normalize("ก ําลัง") == "กำลัง"
    # NFKC would decompose SARA AM: make sure we do not
    assert normalize("สำเร็จ") == "สำเร็จ"
    assert normalize("ＰＭＱＡ") == "PMQA"


@pytest.mark.parametrize("text,iso,raw", [
    ("วันพุธที่ 8 ธันวาคม พ.ศ. 2564", "2021-12-08", "8 ธันวาคม พ.ศ. 2564"),
    ("(23 พ.ย. 2563) เวลา 09.00 น.", "2020-11-23", "23 พ.ย. 2563"),
    ("๒๓ พ.ย. ๒๕๖๓", "2020-11-23", "๒๓ พ.ย. ๒๕๖๓"),
    ("ระหว่างวันที่ 7-8 ธ.ค. 2564", "2021-12-07", "7-8 ธ.ค. 2564"),
    ("วันที่ 29 เมษายน 2565", "2022-04-29", "29 เมษายน 2565"),
    ("ค.ศ. form 8 ธันวาคม ค.ศ. 2021", "2021-12-08", "8 ธันวาคม ค.ศ. 2021"),
    ("Published 8 December 2021", "2021-12-08", "8 December 2021"),
    ("2023-02-20", "2023-02-20", "2023-02-20"),
])
def test_buddhist_era_and_thai_digit_dates(text, iso, raw):
    assert find_date(text) == (iso, raw)


def test_impossible_or_missing_dates():
    assert parse_thai_date("31 กุมภาพันธ์ 2564") is None
    assert parse_thai_date("ไม่มีวันที่") is None


def test_sentences_keep_abbreviations_and_dates_whole():
    text = normalize("เมื่อวันที่ 7 ธันวาคม 2564 สำนักงาน ก.พ.ร. ได้จัดกิจกรรมแลกเปลี่ยนเรียนรู้ "
                     "เรื่องความสำเร็จ\nจังหวัดขอนแก่นมีเป้าหมายการพัฒนาไปสู่การเป็นเมืองศูนย์กลาง "
                     "ทางเศรษฐกิจและการแพทย์ของภูมิภาค")
    spans = split_sentences(text)
    sents = [text[a:b] for a, b in spans]
    # the abbreviation and the date each stay inside one sentence with their neighbours
    assert [("ก.พ.ร. ได้จัดกิจกรรม" in s, "7 ธันวาคม 2564 สำนักงาน" in s) for s in sents].count(
        (True, True)) == 1
    # spans are in order, do not overlap and lose nothing but the spaces/newlines between them
    assert all(b <= a2 for (_, b), (a2, _) in zip(spans, spans[1:]))
    assert "".join(sents).replace(" ", "") == text.replace("\n", "").replace(" ", "")
    assert not any(s.endswith("ก.พ.") for s in sents)
    assert not any(s.endswith("ธันวาคม") for s in sents)
    assert sents[-1].endswith("ของภูมิภาค")
    assert len(sents) >= 2  # the newline always splits


def test_provinces_found_in_seed_text():
    from corpus.seeds import bundled_seeds

    docs = {d.doc_id: d for d in bundled_seeds()}
    assert provinces_in(docs["6fcee9b62a8409b7"].body)[:2] == ["ขอนแก่น", "พังงา"]
    assert {"นครราชสีมา", "ศรีสะเกษ", "สุพรรณบุรี", "สมุทรปราการ", "สุราษฎร์ธานี"} <= set(
        provinces_in(docs["c548de22d8cc4494"].body))
    assert provinces_in("ข้อความที่ไม่มีชื่อจังหวัด") == []


def test_english_query_expansion():
    assert "ขอนแก่น" in expand_english("success factors for Khon Kaen Study")
    assert "ปัจจัยความสำเร็จ" in expand_english("success factors for Khon Kaen Study")
    assert expand_english("ปัจจัยความสำเร็จ") == ""
    assert expand_english("nanny state") == ""  # 'nan' is a province; whole words only


def test_bundled_seed_corpus_matches_shared_seeds(tmp_path):
    if not SEEDS.exists():
        strict_skip(f"no shared seeds at {SEEDS} (set KM_SEARCH_SHARED)")
    from corpus.seeds import BUNDLED, build_seed_jsonl

    out = tmp_path / "seeds.jsonl"
    docs = build_seed_jsonl(SEEDS, out)
    assert out.read_text(encoding="utf-8") == BUNDLED.read_text(encoding="utf-8")
    assert len(docs) == 5
    for d in docs:
        assert "แชร์หน้านี้" not in d.body and "Visited" not in d.body
        assert d.body.count(d.title) == 0  # repeated headlines removed
        assert d.published
    assert [d.published for d in docs] == ["2021-12-08", "2021-11-30", "2023-02-20",
                                           "2022-04-29", "2020-11-23"]


def test_readme_settings_table_is_generated_from_the_settings_list():
    from km_search.settings import settings_markdown

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    assert settings_markdown() in readme

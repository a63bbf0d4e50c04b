"""Lessons-learned layer: cards, facets, store, similar cases, comparison handouts."""
from __future__ import annotations

import re

import pytest

from corpus.seeds import bundled_seeds
from km_search.lessons import LessonStore, compare, extract_card, facets as F
from bench.lessons import load_labels, score_card

KK_PN = "6fcee9b62a8409b7"
ROOT_TMP = __import__("pathlib").Path(__import__("tempfile").gettempdir()) / "km-search-test-roles"
SEED_IDS = [KK_PN, "060103db4d9e3160", "d7880ede011fff30", "c548de22d8cc4494", "7b7b360df6402293"]


@pytest.fixture(scope="module")
def seeds():
    return {d.doc_id: d for d in bundled_seeds()}


@pytest.fixture(scope="module")
def cards(seeds):
    """Cards without the role model (headings, cue phrases, patterns): fast, and what the
    pattern fields below are about."""
    return {i: extract_card(d, roles=None) for i, d in seeds.items()}


@pytest.fixture(scope="module")
def roles():
    from km_search.lessons.roles import role_model
    from tests.conftest import make_config

    model = role_model(make_config(ROOT_TMP))
    assert model is not None, "the default model is needed for the role model"
    return model


@pytest.fixture(scope="module")
def labels():
    return load_labels()


@pytest.fixture
def store(tmp_path, seeds):
    s = LessonStore(tmp_path / "lessons.db", roles=None)
    s.sync(seeds.values())
    yield s
    s.close()


def _citations_ok(card, doc):
    for name in ("programmes", "success_factors", "figures", "people", "provinces", "results"):
        for it in card.items(name):
            assert it.citations, (name, it.text)
            for c in it.citations:
                assert c.doc_id == doc.doc_id
                if c.where == "body":
                    assert doc.body[c.start:c.end] == c.text and c.text.strip()


@pytest.mark.parametrize("doc_id", SEED_IDS)
def test_seed_card_pattern_fields(doc_id, cards, seeds, labels):
    """Pattern fields (programmes, provinces, agencies, figures, people) on the seeds: a
    regression floor. The seeds' labels were written by the rules' author, so the lesson
    roles are measured on the held-out documents instead (test_heldout_*)."""
    card, label = cards[doc_id], labels[doc_id]
    _citations_ok(card, seeds[doc_id])
    s = score_card(card, label)
    if label["programmes"]:
        assert s["programmes"].recall >= 0.5 and s["programmes"].precision >= 0.75
    if label["provinces"]:
        assert s["provinces"].recall == 1.0 and s["provinces"].precision == 1.0
    assert s["agencies"].recall == 1.0
    if label["figures"]:
        assert s["figures"].recall == 1.0
    assert s["people"].recall >= 0.75 and s["roles"].recall >= 0.6


# -- report structure: headings and lists (no model needed) ----------------------------------
REPORT = """รายงานสรุปบทเรียน โครงการตลาดชุมชนออนไลน์ อำเภอตัวอย่าง

ความเป็นมา
อำเภอจัดทำตลาดออนไลน์ให้ผู้ผลิตในชุมชนตั้งแต่ปี ๒๕๖๕

ปัจจัยที่ส่งผลต่อความสำเร็จ
๑. พัฒนาการอำเภอลงมือสอนถ่ายภาพสินค้าด้วยตนเอง
๒. กลุ่มแม่บ้านแบ่งหน้าที่กันตอบลูกค้าและแพ็กของ

ปัญหาและอุปสรรค
- ค่าขนส่งสูงเมื่อเทียบกับราคาสินค้า
- สมาชิกสูงอายุใช้โทรศัพท์ไม่คล่อง
- สินค้าบางชนิดเก็บได้ไม่นาน
• ช่วงฝนตกหนักไปรษณีย์ปิดบ่อย
– เงินทุนหมุนเวียนของกลุ่มมีน้อย
1) ยอดสั่งซื้อไม่สม่ำเสมอ
2) ไม่มีผู้ดูแลเพจในวันหยุด
3) ภาพสินค้าไม่ชัดในช่วงแรก

ข้อเสนอแนะ: ควรรวมการขนส่งหลายกลุ่มเพื่อลดค่าส่ง
"""


def _doc(body, doc_id="report"):
    from km_search.models import Document
    return Document(doc_id=doc_id, title=body.split("\n", 1)[0], body=body, url="", provinces=[])


def test_items_under_role_headings_inherit_the_role():
    """Every bullet under "ปัญหาและอุปสรรค" is an obstacle (8 of them, in four list styles),
    Thai-numbered items under a factor heading are factors, and "ข้อเสนอแนะ: …" on one line
    is a recommendation; the context paragraph is none of these."""
    card = extract_card(_doc(REPORT), roles=None)
    obstacles = [i.text for i in card.obstacles]
    assert len(obstacles) == 8 and obstacles[0] == "ค่าขนส่งสูงเมื่อเทียบกับราคาสินค้า"
    assert obstacles[-1] == "ภาพสินค้าไม่ชัดในช่วงแรก"
    assert [i.text for i in card.success_factors] == [
        "พัฒนาการอำเภอลงมือสอนถ่ายภาพสินค้าด้วยตนเอง", "กลุ่มแม่บ้านแบ่งหน้าที่กันตอบลูกค้าและแพ็กของ"]
    assert [i.text for i in card.recommendations] == ["ควรรวมการขนส่งหลายกลุ่มเพื่อลดค่าส่ง"]
    for name in ("success_factors", "obstacles", "recommendations"):
        for it in card.items(name):  # each item cites exactly its own text
            c = it.citations[0]
            assert REPORT[c.start:c.end] == it.text
    assert not any("ตลาดออนไลน์" in i.text for f in ("success_factors", "obstacles") for i in card.items(f))


def test_heading_detection():
    from km_search.lessons.structure import heading_role

    assert heading_role("ปัจจัยแห่งความสำเร็จ") == "success_factor"
    assert heading_role("3. ปัจจัยที่ส่งผลต่อความสำเร็จ :") == "success_factor"
    assert heading_role("๔. ปัญหาและอุปสรรค") == "obstacle"
    assert heading_role("ข้อเสนอแนะ") == "recommendation"
    assert heading_role("บทเรียนที่ได้รับ") == "lesson" and heading_role("Lessons learned") == "lesson"
    assert heading_role("Challenges") == "obstacle" and heading_role("Recommendations") == "recommendation"
    assert heading_role("ปัญหาความยากจนของประชาชนในพื้นที่ห่างไกลที่ต้องแก้ไขโดยเร่งด่วนด้วยการบูรณาการหลายหน่วยงานร่วมกันอย่างต่อเนื่อง") is None


# -- the role model, measured on data it was not trained on ---------------------------------
@pytest.mark.slow
def test_role_model_on_held_out_sentences(roles):
    """The held-out fifth of the labelled sentences (never trained on)."""
    from km_search.lessons.roles import evaluate_held_out

    res = evaluate_held_out(roles)
    sf = res["success_factor"]
    assert sf["gold"] >= 20 and sf["precision"] >= 0.8 and sf["recall"] >= 0.8
    for role in ("obstacle", "recommendation"):
        assert res[role]["precision"] >= 0.75 and res[role]["recall"] >= 0.75, role


@pytest.mark.slow
def test_lesson_cards_on_held_out_documents(roles):
    """Documents written in the style of real reports, labelled before the rules were run
    on them: factors, obstacles and recommendations, and the two-case document."""
    from bench.lessons import evaluate_heldout

    res = evaluate_heldout(roles)
    sf = res["success_factors"]
    assert sf.precision >= 0.7 and sf.recall >= 0.7
    assert res["recommendations"].precision >= 0.7 and res["recommendations"].recall >= 0.7
    assert res["obstacles"].precision >= 0.5 and res["obstacles"].recall >= 0.7
    assert res["cases"].precision == 1.0 and res["cases"].recall == 1.0


@pytest.mark.slow
def test_paraphrased_factors_without_cue_words(roles):
    """Phrasings no cue list names: the model files them by role. (The factor sentence
    scores .61, under the card's P_MIN of .7 chosen on the seeds, so a card outside a
    factor heading would miss it: the threshold trades recall for precision on news prose.)"""
    factor = "งานนี้เดินหน้าได้ก็เพราะปลัดอำเภอออกไปนั่งคุยกับชาวบ้านทุกเย็นจนได้ใจคนในพื้นที่"
    assert roles.predict([factor])[0][0] == "success_factor"
    body = ("รายงานผลการดำเนินงาน\n\n"
            "สิ่งที่ทีมงานยอมรับว่าติดขัดมากที่สุดคือระเบียบการจัดซื้อที่ใช้เวลาหลายเดือน\n\n"
            "คราวหน้าหน่วยงานที่จะทำแบบนี้ควรคุยกับฝ่ายพัสดุตั้งแต่วันแรก\n\n"
            "ปัจจัยแห่งความสำเร็จ\n- " + factor + "\n")
    card = extract_card(_doc(body), roles=roles)
    assert [i.text for i in card.success_factors] == [factor]
    assert any("ระเบียบการจัดซื้อ" in i.text for i in card.obstacles)
    assert any("ฝ่ายพัสดุ" in i.text for i in card.recommendations)


@pytest.mark.slow
def test_two_case_document_compares_its_cases(roles, tmp_path):
    """One document reporting two provinces yields two cases, each with its own factor,
    and the comparison handout puts them side by side."""
    from bench.lessons import heldout_documents

    doc = next(d for d in heldout_documents() if d.doc_id == "h2_two_provinces.txt")
    card = extract_card(doc, roles=roles)
    assert card.cases() == ["สุโขทัย", "สตูล"]
    satun = card.scoped("สตูล")
    assert any("ผู้นำศาสนา" in i.text for i in satun.success_factors)
    assert not any("โรงเรียน" in i.text and "สุโขทัย" in i.text for i in satun.success_factors)
    md = compare.to_markdown([card.scoped("สุโขทัย"), satun])
    header = next(line for line in md.splitlines() if line.startswith("| หัวข้อ"))
    assert "สุโขทัย" in header and "สตูล" in header


def test_khon_kaen_phang_nga_case_names(cards):
    card = cards[KK_PN]
    progs = {i.text: i.province for i in card.programmes}
    assert progs["คู่เสี่ยว เกี่ยวก้อย"] == "ขอนแก่น" and progs["ขอนแก่นศึกษา"] == "ขอนแก่น"
    assert progs["สมัชชาพังงา"] == "พังงา"
    kk = card.scoped("ขอนแก่น")
    assert "สมัชชาพังงา" not in {i.text for i in kk.programmes}
    assert "ขอนแก่นศึกษา" in kk.case_name
    tips = " ".join(i.text for i in kk.success_factors)  # shared tips stay with each case
    assert "ความต้องการของประชาชน" in tips and "ขวัญกำลังใจ" in tips
    with pytest.raises(KeyError):
        card.scoped("เชียงใหม่")


def test_ddc_five_s_and_figures(cards):
    card = cards["d7880ede011fff30"]
    assert "DDC-PMQA 4.0" in [i.text for i in card.programmes]
    five_s = next(i for i in card.success_factors if "5 ส." in i.text)
    assert all(f"ส.{n}" in five_s.text for n in range(1, 6))
    assert any("ปัจจัยความสำเร็จ" in c.text for c in five_s.citations)
    assert {i.text for i in card.figures} >= {"365 ผลงาน", "167 ผลงาน"}
    # Government 4.0's three success factors (seed 001): one item per listed factor
    g40 = cards["060103db4d9e3160"].success_factors
    assert len(g40) == 3 and [t for i in g40 for t in i.tags][:1] == ["collaboration"]
    assert "innovation" in g40[1].tags and "digital" in g40[2].tags


def test_fiscal_year():
    assert F.fiscal_year("2021-10-01") == 2565 and F.fiscal_year("2022-09-30") == 2565
    assert F.fiscal_year("2021-09-30") == 2564 and F.fiscal_year(None) is None
    assert F.fiscal_year_range(2565) == ("2021-10-01", "2022-09-30")


def test_gazetteer_and_regions():
    assert F.agencies_in("ข่าว พช. และ คร. ร่วมกับ สป.มท.") == [
        "กรมการพัฒนาชุมชน", "กรมควบคุมโรค", "สำนักงานปลัดกระทรวงมหาดไทย"]
    assert F.agencies_in("ประธาน อ.ก.พ.ร. ประชุม ครม.") == []  # not OPDC, not คร.
    assert F.agencies_in("สำนักงานคณะกรรมการพัฒนาระบบราชการ") == ["สำนักงาน ก.พ.ร."]
    assert F.ministries_of(["กรมควบคุมโรค", "กรมการพัฒนาชุมชน"]) == ["กระทรวงสาธารณสุข", "กระทรวงมหาดไทย"]
    assert sum(len(v) for v in F.REGIONS.values()) == 77
    assert F.region_of("พังงา") == "ภาคใต้" and F.region_of("ขอนแก่น") == "ภาคตะวันออกเฉียงเหนือ"
    assert F.pmqa_categories("ผลการดำเนินการหมวด 3 และ หมวด๗") == [3, 7]
    assert F.gov40_dimensions("Open & Connected, Citizen-Centric") == [
        "เปิดกว้างและเชื่อมโยง", "ยึดประชาชนเป็นศูนย์กลาง"]


def test_facet_counts_and_browse(store):
    counts = store.facet_counts()
    assert counts["fiscal_year"] == {2565: 3, 2564: 1, 2566: 1}
    assert counts["agency"]["สำนักงาน ก.พ.ร."] == 3 and counts["agency"]["กระทรวงมหาดไทย"] == 2
    assert counts["ministry"]["กระทรวงมหาดไทย"] == 3  # มท. itself + พช. + สป.มท.
    assert counts["province"]["ขอนแก่น"] == 3 and counts["region"]["ภาคใต้"] == 2
    assert counts["gov40"] == {"ยึดประชาชนเป็นศูนย์กลาง": 4, "สมรรถนะสูงและทันสมัย": 4,
                               "เปิดกว้างและเชื่อมโยง": 4}
    sub = store.facet_counts(["d7880ede011fff30", "d7880ede011fff30", KK_PN])
    assert sub["fiscal_year"] == {2565: 1, 2566: 1}
    ids = lambda cs: {c.doc_id for c in cs}  # noqa: E731
    assert ids(store.query(province="ขอนแก่น")) == {KK_PN}  # a case province, not a university
    assert ids(store.query(agency="พช.")) == {"060103db4d9e3160"}
    assert ids(store.query(agency="มท.")) == {"060103db4d9e3160", "c548de22d8cc4494", "7b7b360df6402293"}
    assert ids(store.query(year=2565)) == {KK_PN, "060103db4d9e3160", "c548de22d8cc4494"}
    assert ids(store.query(year=2023)) == {"d7880ede011fff30"}
    assert "d7880ede011fff30" in ids(store.query(factor="ติดตาม"))
    assert ids(store.query(factor="innovation", agency="มท.")) == {
        "060103db4d9e3160", "c548de22d8cc4494", "7b7b360df6402293"}


def test_facets_of_reads_the_facet_table_as_the_cards_hold_them(store, seeds):
    """facets_of (two SQL queries, no card JSON parsed: what search responses use) gives
    every carded document exactly its card's facet values, ints for years; a document
    without a card is absent, so its hits are faceted from their own text."""
    from km_search.lessons import facet_counts
    from km_search.lessons import facets as F

    ids = list(seeds)
    got = store.facets_of(ids + ["no-such-doc"])
    assert set(got) == set(ids)
    for d in ids:
        card = store.get(d).facets
        for name in F.FACETS:
            assert sorted(map(str, got[d].get(name, []))) == sorted(map(str, card.get(name, []))), (d, name)
            assert all(isinstance(v, int) for v in got[d].get(name, [])) == (
                name in F.INT_FACETS or not got[d].get(name))
    assert facet_counts(ids + ids[:2], store=store) == F.count_facets(store.get(d).facets for d in ids)


def test_store_incremental(store, seeds):
    assert store.sync(seeds.values()) == {"added": 0, "updated": 0, "unchanged": 5, "removed": 0}
    docs = list(seeds.values())
    changed = docs[0].__class__.from_dict({**docs[0].to_dict(), "hash": "", "body": docs[0].body + "\nเพิ่ม"})
    assert store.sync([changed] + docs[1:4]) == {"added": 0, "updated": 1, "unchanged": 3, "removed": 1}
    assert len(store) == 4 and store.get(docs[4].doc_id) is None
    assert store.get(f"{KK_PN}#พังงา").scope == "พังงา"


def test_compare_khon_kaen_vs_phang_nga(store, tmp_path):
    from docx import Document as Docx

    refs = [f"{KK_PN}#ขอนแก่น", f"{KK_PN}#พังงา"]
    md = compare.to_markdown(refs, store=store)
    assert md.startswith("# เปรียบเทียบกรณีศึกษา") and "ขอนแก่นศึกษา" in md and "สมัชชาพังงา" in md
    header = next(line for line in md.splitlines() if line.startswith("| หัวข้อ"))
    assert "ขอนแก่น" in header and "พังงา" in header
    n_sources = len(re.findall(r"^\[\d+\] D1, อักขระ \d+-\d+: “", md, re.M))
    assert n_sources >= 10 and f"[{n_sources}]" in md.split("## เอกสาร")[0]
    path = compare.to_docx(refs, tmp_path / "handout.docx", store=store)
    doc = Docx(str(path))  # opens back as a valid DOCX
    table = doc.tables[0]
    assert len(table.columns) == 3 and len(table.rows) == len(compare.ROWS) + 1
    assert "ขอนแก่นศึกษา" in table.cell(0, 1).text and "สมัชชาพังงา" in table.cell(0, 2).text
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "แหล่งที่มา" in text and "“ผ่านการดำเนินการ “ขอนแก่นศึกษา”" in text
    with pytest.raises(ValueError):
        compare.build([KK_PN], store=store)
    wide = compare.to_docx([KK_PN, "d7880ede011fff30", "c548de22d8cc4494"], tmp_path / "w.docx", store=store)
    assert len(Docx(str(wide)).tables[0].columns) == 4


def test_similar_cases_and_search_facets(seed_home, tmp_path):
    from km_search.lessons import facet_counts, similar_cases
    from km_search.search import Searcher
    from tests.conftest import make_config

    cfg = make_config(seed_home)
    searcher = Searcher(cfg)
    with LessonStore(tmp_path / "lessons.db") as store:
        store.sync_corpus(cfg.corpus_db)
        sims = similar_cases(searcher, KK_PN, k=3, store=store)
        assert len(sims) == 3 and KK_PN not in {s["doc_id"] for s in sims}
        assert sims[0]["score"] >= sims[-1]["score"] and "case" in sims[0]
        with pytest.raises(KeyError):
            similar_cases(searcher, "nope")
        hits = searcher.search("ปัจจัยความสำเร็จ", k=10, mode="bm25")
        counts = facet_counts(hits, store=store)
        n_docs = len({h.doc_id for h in hits})
        assert sum(counts["fiscal_year"].values()) == n_docs
        plain = facet_counts(hits)  # without a store: from the hits' own metadata
        assert sum(plain["fiscal_year"].values()) == n_docs


def test_agency_prefilter_matches_full_pattern():
    """find_agencies compiles only the alternatives whose literal anchor is in the text;
    it must find exactly what the full 200-way alternation finds."""
    import re

    from corpus.seeds import bundled_seeds
    from km_search.lessons import facets as F

    full = re.compile("|".join(f"(?P<a{i}>{a[0]})" for i, a in enumerate(F._alts)))
    texts = [d.title + " " + d.body for d in bundled_seeds()]
    texts += ["สำนักงาน ก.พ.ร. และกรมการปกครอง กระทรวงมหาดไทย (สป.มท.) กับ อ.ก.พ.ร. และ OPDC"]
    found = 0
    for t in texts:
        want = [(F._AGENCY_GROUP[m.lastgroup], m.start(), m.end()) for m in full.finditer(t)]
        assert F.find_agencies(t) == want
        found += len(want)
    assert found > 5

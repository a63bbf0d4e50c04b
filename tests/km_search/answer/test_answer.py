"""Answers: the library's answer builder, `km-search ask`, PDF repair on `km-search add`."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ROOT, make_config

KK = "6fcee9b62a8409b7"


def km(env, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def searcher(seed_home, embedder):
    from km_search.search import Searcher

    return Searcher(make_config(seed_home), embedder)


def test_ask_cli_gives_the_chat_answer(cli_env, seed_home, embedder):
    from api import create_app

    q = "ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร"
    r = km(cli_env, "ask", q, "--json")
    assert r.returncode == 0, r.stderr
    cli = json.loads(r.stdout)
    with TestClient(create_app(make_config(seed_home), embedder)) as c:
        chat = c.post("/chat", json={"question": q}).json()
    assert cli["answer"] == chat["answer"] and cli["found"] and cli["mode"] == "extractive"
    assert [x["doc_id"] for x in cli["citations"]] == [x["doc_id"] for x in chat["citations"]]
    assert cli["citations"][0]["doc_id"] == KK
    text = km(cli_env, "ask", "how to bake sourdough bread")
    assert text.returncode == 0 and "No good answer" in text.stdout
    bad = km(cli_env, "ask", "   ")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_add_repairs_a_damaged_pdf_and_keeps_the_original(tmp_path):
    """A PDF whose font maps SARA AA to SARA AM ("กำร") is repaired on `add`; the text as
    extracted stays in metadata["raw_text"]."""
    from corpus.ingest import file_document

    damaged = ("กำรพัฒนำคุณภำพกำรบริหำรจัดกำรภำครัฐของจังหวัดขอนแก่น "
               "ประสบควำมส าเร จจำกกำรมีส่วนร่วมของประชำชน")
    pdf = tmp_path / "report.pdf"
    _write_pdf(pdf, damaged)
    doc = file_document(pdf)
    assert "กำร" not in doc.body and "การพัฒนา" in doc.body and "ความสำเร็จ" in doc.body
    assert "กำร" in doc.metadata["raw_text"]


def _write_pdf(path, text: str) -> None:
    """A one-page PDF whose extracted text is ``text`` (reportlab draws it with a Thai
    TrueType font when one is installed)."""
    pytest.importorskip("reportlab")
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas
    import glob

    fonts = sorted(glob.glob("/usr/share/fonts/**/*Garuda*.ttf", recursive=True)
                   + glob.glob("/usr/share/fonts/**/*Loma*.ttf", recursive=True)
                   + glob.glob("/usr/share/fonts/**/*Sarabun*.ttf", recursive=True)
                   + glob.glob("/usr/share/fonts/**/*Noto*Thai*.ttf", recursive=True))
    if not fonts:
        pytest.skip("no Thai TrueType font installed")
    pdfmetrics.registerFont(TTFont("Thai", fonts[0]))
    c = canvas.Canvas(str(path))
    c.setFont("Thai", 12)
    c.drawString(40, 800, text)
    c.save()


# -- the answer builder on real passages (no index, no model: fast) -------------------------
def _hits(question: str, docs, k: int = 4):
    """The passages of ``docs`` (the project's chunker), ranked by shared query words: a
    stand-in for retrieval so these tests check the answer builder alone."""
    from km_search.chunking import chunk_text
    from km_search.models import Hit
    from km_search.search import query_tokens
    from km_search.thai import tokenize

    q = set(query_tokens(question))
    hits = []
    for d in docs:
        for n, (a, b) in enumerate(chunk_text(d.body)):
            text = d.body[a:b]
            overlap = len(q & set(tokenize(text, normalized=True)))
            hits.append(Hit(rank=0, score=float(overlap), doc_id=d.doc_id, chunk_id=len(hits), ordinal=n,
                            title=d.title, url="", publisher="", published=None, published_raw="",
                            provinces=[], text=text, snippet=text[:100], scores={"bm25": float(overlap)}))
    hits.sort(key=lambda h: -h.score)
    for i, h in enumerate(hits):
        h.rank = i + 1
    return hits[:k]


@pytest.fixture(scope="module")
def docs():
    from bench.lessons import heldout_documents
    from corpus.seeds import bundled_seeds

    return {d.doc_id: d for d in list(bundled_seeds()) + heldout_documents()}


def _ask(question, docs, ids, cards=None):
    from km_search.answer import extractive
    from km_search.settings import load_config

    return extractive(question, _hits(question, [docs[i] for i in ids]), load_config(), cards)


@pytest.mark.parametrize("question,kind", [
    ("ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร", "factors"),
    ("success factors for Khon Kaen Study", "factors"),
    ("ปัญหาอุปสรรคของธนาคารขยะคืออะไร", "obstacles"),
    ("What do they recommend to other provinces?", "recommendations"),
    ("จังหวัดขอนแก่นทำอย่างไรจึงได้รางวัล PMQA 4.0", "how"),
    ("ทำไมต้องจัดทำแผนเพิ่มประสิทธิภาพองค์การ", "why"),
    ("ใครเป็นผู้ว่าราชการจังหวัดพังงา", "who"),
    ("กิจกรรมจัดขึ้นเมื่อใด", "when"),
    ("มีผลงานสมัครกี่ผลงาน", "how_many"),
    ("จังหวัดที่เข้าร่วมโครงการมีจังหวัดอะไรบ้าง", "list"),
    ("PMQA 4.0 คืออะไร", "definition"),
    ("เปรียบเทียบจังหวัดสุโขทัยกับจังหวัดสตูล", "comparison"),
])
def test_question_types(question, kind):
    from km_search.answer import understand

    assert understand(question).kind == kind


def test_question_entities_thai_and_english():
    from km_search.answer import understand

    assert understand("How did Phang Nga bring citizens in?").provinces == ["พังงา"]
    assert understand("เปรียบเทียบจังหวัดสุโขทัยกับจังหวัดสตูล").provinces == ["สุโขทัย", "สตูล"]


def _marks(text):
    return [int(n) for n in re.findall(r"\[(\d+)\]", text)]


def test_a_province_question_gets_that_provinces_sentences(docs):
    """One passage tells Khon Kaen's and Phang Nga's ways; each question gets its own."""
    kk = _ask("จังหวัดขอนแก่นทำอย่างไรจึงได้รางวัล PMQA 4.0", docs, [KK])
    pn = _ask("จังหวัดพังงาทำอย่างไรจึงได้รางวัล PMQA 4.0", docs, [KK])
    assert kk.found and kk.kind == "how" and "ขอนแก่นศึกษา" in kk.text and "สมัชชาพังงา" not in kk.text
    assert pn.found and "สมัชชาพังงา" in pn.text and "ขอนแก่นศึกษา" not in pn.text
    assert not pn.text.rstrip(" []0123456789").endswith("โดยมี")  # whole sentences


def test_enumeration_is_listed_in_full(docs):
    a = _ask("ปัจจัยแห่งความสำเร็จ 3 ประการของระบบราชการ 4.0 มีอะไรบ้าง", docs, ["060103db4d9e3160"])
    assert a.found and all(w in a.text for w in ("การสานพลัง", "นวัตกรรม", "ดิจิทัล"))


def test_one_citation_per_source_in_order(docs):
    a = _ask("ปัจจัยความสำเร็จ PMQA 4.0 มีอะไรบ้าง", docs, [KK, "060103db4d9e3160", "d7880ede011fff30"])
    marks = _marks(a.text)
    assert a.found and marks == sorted(set(marks)) == list(range(1, len(a.cited) + 1))
    assert "][" not in a.text


def test_english_question_gets_english_framing_around_thai_quotes(docs):
    a = _ask("success factors for Khon Kaen Study", docs, [KK])
    assert a.found and a.text.startswith("Success factors") and "(quoted in Thai)" in a.text
    assert re.search(r"[\u0e00-\u0e7f]", a.text)


@pytest.mark.parametrize("question,ids,want", [
    ("ใครเป็นผู้ว่าราชการจังหวัดพังงา", [KK], "ทิพญพงศ์ธาดา"),
    ("กรมการพัฒนาชุมชนประชุมคณะทำงาน PMQA 4.0 ครั้งที่ 2 เมื่อไร", ["060103db4d9e3160"], "30 พฤศจิกายน 2564"),
    ("มีผลงานสมัครขอรับรางวัลคุณภาพการบริหารจัดการภาครัฐกี่ผลงาน", ["d7880ede011fff30"], "365"),
    ("How many applications did the Chonburi licensing centre handle in its first year?",
     ["h3_english_report.txt"], "3,100"),
    ("Why did the five agencies send staff to the Chonburi licensing centre?",
     ["h3_english_report.txt"], "governor's personal backing"),
    ("Andaman hub medical network คืออะไร", [KK], "การเชื่อมโยงระบบปฏิบัติการทางการแพทย์"),
])
def test_who_when_how_many_why_definition(question, ids, want, docs):
    a = _ask(question, docs, ids)
    assert a.found and want in a.text.replace("\n", " "), a.text


def test_comparison_gives_each_case(docs):
    a = _ask("เปรียบเทียบการจัดการขยะของจังหวัดสุโขทัยและจังหวัดสตูล", docs, ["h2_two_provinces.txt"])
    assert a.found and "ธนาคารขยะ" in a.text and "มัสยิด" in a.text


def test_factor_question_uses_lesson_card_items_of_the_asked_case(docs):
    """With the lesson cards at hand, a Satun factor question gets Satun's factor item
    (the card of a two-case document, scoped to the province asked)."""
    from km_search.lessons import extract_card

    cards = {d: extract_card(docs[d]) for d in ("h2_two_provinces.txt",)}
    a = _ask("ปัจจัยความสำเร็จของจังหวัดสตูลในการจัดการขยะคืออะไร", docs, ["h2_two_provinces.txt"],
             cards.get)
    assert a.found and "ผู้นำศาสนา" in a.text and "ธนาคารขยะ" not in a.text


@pytest.mark.parametrize("question", ["สูตรแกงเขียวหวาน", "how to bake sourdough bread",
                                      "ราคาทองคำวันนี้เท่าไร"])
def test_unrelated_question_gets_no_answer(question, docs):
    a = _ask(question, docs, [KK, "h2_two_provinces.txt"])
    assert not a.found and a.cited == [] and a.mode == "none"


@pytest.mark.parametrize("question", ["สูตรแกงเขียวหวาน", "how to bake sourdough bread",
                                      "ราคาทองคำวันนี้เท่าไร", "football world cup results"])
def test_the_gate_refuses_passages_that_do_not_cover_the_question(question, docs):
    """The no-answer gate itself (not only the sentence filter after it): the best
    passages for an unrelated question are not cited; a related one passes."""
    from km_search.answer import strong_hits
    from km_search.settings import load_config

    cfg = load_config()
    assert strong_hits(_hits(question, [docs[KK], docs["h2_two_provinces.txt"]]), cfg, question) == []
    ok = "จังหวัดสตูลจัดการขยะโดยชุมชนอย่างไร"
    assert strong_hits(_hits(ok, [docs[KK], docs["h2_two_provinces.txt"]]), cfg, ok)

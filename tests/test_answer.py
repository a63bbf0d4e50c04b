"""Answers: the library's answer builder, `km-search ask`, PDF repair on `km-search add`."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from conftest import ROOT, make_config

KK = "6fcee9b62a8409b7"


def km(env, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "km_search.cli", *args], env=env, cwd=ROOT,
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

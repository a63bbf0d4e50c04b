"""Reading users' files: every supported format, Thai encodings, broken inputs."""
from __future__ import annotations

import json

import docx
import pytest

from corpus.ingest import IngestError, collect, file_document, jsonl_documents
from km_search.docstore import DocumentStore
from km_search.models import Document

THAI = "จังหวัดขอนแก่นใช้แนวทางขอนแก่นศึกษา จัดทำองค์ความรู้ของบุคลากรเพื่อส่งต่อรุ่นต่อรุ่น"


def test_text_markdown_html_docx(tmp_path):
    (tmp_path / "a.txt").write_text("รายงานผลการดำเนินงาน\n" + THAI, encoding="utf-8")
    (tmp_path / "b.md").write_text("# บทเรียนจากขอนแก่น\n\n" + THAI, encoding="utf-8")
    (tmp_path / "c.html").write_text(
        f"<html><head><title>x</title><script>alert(1)</script></head><body><nav>เมนู</nav>"
        f"<h1>ขอนแก่นศึกษา</h1><p>{THAI}</p><p>วันที่ ๗ ธันวาคม ๒๕๖๔</p></body></html>", encoding="utf-8")
    d = docx.Document()
    d.core_properties.title = "คู่มือ KM"
    d.add_paragraph(THAI)
    t = d.add_table(rows=1, cols=2)
    t.rows[0].cells[0].text, t.rows[0].cells[1].text = "ปัจจัย", "ผู้นำเป็นต้นแบบ"
    d.save(tmp_path / "d.docx")
    rep = collect([tmp_path])
    assert not rep.errors
    by = {doc.metadata["path"].rsplit("/", 1)[-1]: doc for doc in rep.documents}
    assert by["a.txt"].title == "รายงานผลการดำเนินงาน" and "ขอนแก่นศึกษา" in by["a.txt"].body
    assert by["b.md"].title == "บทเรียนจากขอนแก่น"
    assert by["c.html"].title == "ขอนแก่นศึกษา" and "alert" not in by["c.html"].body
    assert "เมนู" not in by["c.html"].body and by["c.html"].published == "2021-12-07"
    assert by["d.docx"].title == "คู่มือ KM" and "ผู้นำเป็นต้นแบบ" in by["d.docx"].body
    assert by["a.txt"].provinces == ["ขอนแก่น"]
    assert len({doc.doc_id for doc in rep.documents}) == 4


def test_windows_874_text_is_decoded(tmp_path):
    p = tmp_path / "old.txt"
    p.write_bytes(("ประกาศ\n" + THAI).encode("cp874"))
    assert "ขอนแก่นศึกษา" in file_document(p).body


def test_pdf_real_and_broken(tmp_path):
    try:
        from reportlab.pdfgen import canvas
    except ImportError:
        from tests.conftest import strict_skip
        strict_skip("reportlab is not installed (pip install -e '.[test]')")

    c = canvas.Canvas(str(tmp_path / "ok.pdf"))
    c.drawString(72, 720, "Annual report on public sector development 2021")
    c.drawString(72, 700, "Key success factor: leadership by example.")
    c.save()
    doc = file_document(tmp_path / "ok.pdf")
    assert "leadership by example" in doc.body
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<>> garbage")
    with pytest.raises(IngestError, match="PDF"):
        file_document(tmp_path / "bad.pdf")
    trunc = (tmp_path / "ok.pdf").read_bytes()
    (tmp_path / "trunc.pdf").write_bytes(trunc[: len(trunc) // 2])
    rep = collect([tmp_path / "trunc.pdf", tmp_path / "ok.pdf"])
    assert len(rep.documents) >= 1 and all("leadership" in d.body for d in rep.documents)


def test_jsonl_lines_good_and_bad(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text("\n".join([
        json.dumps({"title": "ก", "text": THAI, "url": "https://a.go.th/1", "published": "23 พ.ย. 2563",
                    "publisher": "มท.", "programme": "ขอนแก่นศึกษา"}, ensure_ascii=False),
        "[1, 2]", "{bad", json.dumps({"title": "", "text": ""}), "",
        json.dumps({"body": "English only document about innovation", "id": "custom-1"}),
    ]), encoding="utf-8")
    items = list(jsonl_documents(p))
    docs = [d for _, d in items if isinstance(d, Document)]
    errs = [(n, e) for n, e in items if isinstance(e, str)]
    assert [n for n, _ in errs] == [2, 3, 4]
    assert docs[0].published == "2020-11-23" and docs[0].published_raw == "23 พ.ย. 2563"
    assert docs[0].metadata == {"programme": "ขอนแก่นศึกษา"}
    assert docs[1].doc_id == "custom-1" and docs[1].title.startswith("English only")


def test_store_upsert_detects_changes(tmp_path):
    with DocumentStore(tmp_path / "c.db") as s:
        d = Document(doc_id="a", title="t", body=THAI, provinces=["ขอนแก่น"], metadata={"k": 1})
        assert s.upsert([d]) == (1, 0)
        assert s.upsert([d]) == (0, 0)
        assert s.upsert([Document(doc_id="a", title="t", body=THAI + " เพิ่ม")]) == (0, 1)
        assert s.get("a").body.endswith("เพิ่ม")
        assert s.delete(["a", "zzz"]) == 1 and s.count() == 0
    with DocumentStore(tmp_path / "c.db") as s:
        s.upsert([d])
    with DocumentStore(tmp_path / "c.db") as s:  # round trip through the file
        got = s.get("a")
        assert got.provinces == ["ขอนแก่น"] and got.metadata == {"k": 1} and got.hash == d.hash


def test_missing_path_is_an_error_not_a_crash(tmp_path):
    rep = collect([tmp_path / "missing"])
    assert rep.errors == [(str(tmp_path / "missing"), "no such file or folder")]

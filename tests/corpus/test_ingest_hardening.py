"""Ingest never loses or half-takes data: per-record ids, per-line errors, empty files.

Fast tier (no model): documents go through `collect` and a real SQLite DocumentStore.
"""
from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus.ingest import collect, jsonl_documents
from km_search.docstore import DocumentStore
from km_search.models import Document

NOTES = ["บันทึกการประชุมเรื่องการจัดการความรู้ ครั้งที่ ๑",
         "สรุปบทเรียนโครงการพัฒนาชุมชนจังหวัดขอนแก่น ปี ๒๕๖๔",
         "แนวทางลดขั้นตอนการให้บริการประชาชน\u200bแบบออนไลน์",
         "Lessons from the flood-relief pilot in Ubon Ratchathani",
         "ข้อเสนอแนะจากการติดตามประเมินผล ส าเร จ ตามเป้าหมาย"]


def _write_jsonl(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _store_all(tmp_path: Path, docs: list[Document]) -> tuple[int, int, int]:
    with DocumentStore(tmp_path / "corpus.db") as s:
        added, changed = s.upsert(docs)
        return added, changed, s.count()


def test_jsonl_records_without_url_or_id_each_keep_their_own_document(tmp_path):
    recs = [{"text": t} for t in NOTES]
    p = _write_jsonl(tmp_path / "notes.jsonl",
                     [json.dumps(r, ensure_ascii=False).encode() for r in recs])
    rep = collect([p])
    assert rep.errors == [] and len(rep.documents) == 5
    assert len({d.doc_id for d in rep.documents}) == 5
    assert _store_all(tmp_path, rep.documents) == (5, 0, 5)
    # the ids are stable: adding the same file again changes nothing ...
    assert _store_all(tmp_path, collect([p]).documents) == (0, 0, 5)
    # ... and editing one line replaces that one document
    recs[2]["text"] = NOTES[2] + " (แก้ไข)"
    _write_jsonl(p, [json.dumps(r, ensure_ascii=False).encode() for r in recs])
    assert _store_all(tmp_path, collect([p]).documents) == (0, 1, 5)


def test_one_bad_line_costs_only_that_line_with_its_number(tmp_path):
    good = json.dumps({"title": "บทเรียนที่ดี", "text": NOTES[1]}, ensure_ascii=False).encode()
    lines = [
        good,                                                    # 1 ok
        b'{"title": "x", "text": "bad \\ud800 escape"}',         # 2 lone surrogate
        b"[" * 5000 + b"]" * 5000,                               # 3 nested 5,000 deep
        b'{"text": "\xe0\xb8 broken byte ' + "ไทย".encode() + b'"}',  # 4 invalid UTF-8
        b'{"text": 12345}',                                      # 5 wrong type
        '{"text": "ok text", "provinces": "ขอนแก่น"}'.encode(),  # 6 wrong type (not a list)
        b'{"text": "ok text", "publisher": {"a": 1}}',           # 7 wrong type
        b'{"text": "\\u0000\\u0000   "}',                         # 8 blank after cleaning
        b'{"text": "words with {{{ and [[[ inside"}',            # 9 fine: braces in a string
        json.dumps({"text": NOTES[3], "id": "rec-10"}).encode(),  # 10 ok
    ]
    p = _write_jsonl(tmp_path / "mixed.jsonl", lines)
    items = list(jsonl_documents(p))
    errors = {n: e for n, e in items if isinstance(e, str)}
    docs = {n: d for n, d in items if isinstance(d, Document)}
    assert sorted(errors) == [2, 3, 4, 5, 6, 7, 8]
    assert sorted(docs) == [1, 9, 10]
    assert "surrogate" in errors[2] and "nested" in errors[3]
    assert "UTF-8" in errors[4] and "column" in errors[4]
    assert "string" in errors[5] and "list of strings" in errors[6] and "empty" in errors[8]
    rep = collect([p])
    assert [w for w, _ in rep.errors] == [f"{p}:{n}" for n in (2, 3, 4, 5, 6, 7, 8)]
    assert _store_all(tmp_path, rep.documents) == (3, 0, 3)


def test_empty_and_all_nul_files_are_refused_with_a_message(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "nul.txt").write_bytes(b"\x00" * 4096)
    (tmp_path / "blank.md").write_text(" \n\t\n\u200b\n", encoding="utf-8")
    (tmp_path / "real.txt").write_text(NOTES[0], encoding="utf-8")
    rep = collect([tmp_path])
    assert [Path(d.metadata["path"]).name for d in rep.documents] == ["real.txt"]
    reasons = {Path(w).name: why for w, why in rep.errors}
    assert set(reasons) == {"empty.txt", "nul.txt", "blank.md"}
    assert all("empty document" in why for why in reasons.values())


_text = st.text(alphabet=st.characters(codec=None, exclude_categories=("Cn",)), max_size=40)
_json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                           | _text, lambda c: st.lists(c, max_size=3)
                           | st.dictionaries(_text, c, max_size=3), max_leaves=8)
_record = st.fixed_dictionaries({}, optional={
    "title": _text | _json_value, "text": _text | st.sampled_from(NOTES) | _json_value,
    "url": st.sampled_from(["", "https://km.example.go.th/a", "https://km.example.go.th/b#x"]),
    "id": st.sampled_from(["r1", "r2", "ไทย id", "a/b"]) | _json_value,
    "published": _text | st.sampled_from(["23 พ.ย. 2563", "2021-02-30", "๒๕๖๔"]),
    "provinces": _json_value, "publisher": _json_value, "extra": _json_value})
_line = (_record.map(lambda r: json.dumps(r, ensure_ascii=False).encode("utf-8", "surrogatepass"))
         | st.binary(max_size=60).filter(lambda b: b"\n" not in b))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(lines=st.lists(_line, min_size=1, max_size=12))
def test_add_on_generated_jsonl_accounts_for_every_line(tmp_path, lines):
    p = _write_jsonl(tmp_path / "gen.jsonl", lines)
    rep = collect([p])  # never raises
    # a UTF-8 byte-order mark opening the file is not content (a BOM-only first line is blank)
    nonblank = [i for i, ln in enumerate(lines, 1)
                if (ln.removeprefix(b"\xef\xbb\xbf") if i == 1 else ln).strip()]
    seen = sorted([int(w.rsplit(":", 1)[1]) for w, _ in rep.errors]
                  + [i for i, _ in jsonl_documents(p) if not isinstance(_, str)])
    assert seen == nonblank  # every line is a document or an error naming it
    assert all(why for _, why in rep.errors)
    db = tmp_path / "corpus.db"
    db.unlink(missing_ok=True)
    with DocumentStore(db) as s:
        s.upsert(rep.documents)  # every accepted document can be stored
        assert s.count() == len({d.doc_id for d in rep.documents})
        last = {d.doc_id: d for d in rep.documents}  # the last line with an id wins
        for doc_id, d in last.items():
            got = s.get(doc_id)
            assert got.body == d.body and got.title == d.title
            assert any(c.isalnum() for c in got.title + got.body)

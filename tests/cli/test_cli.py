"""The `km-search` command as a user runs it: real subprocesses on the seed index."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

KK = "6fcee9b62a8409b7"


def km(env, *args, input=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, input=input, timeout=timeout)


def test_search_json_english_and_thai_rank_khon_kaen_study_first(cli_env):
    for q in ("success factors for Khon Kaen Study", "ปัจจัยความสำเร็จ ขอนแก่นศึกษา"):
        r = km(cli_env, "search", q, "--json", "-k", "3")
        assert r.returncode == 0, r.stderr
        hits = json.loads(r.stdout)["hits"]
        assert len(hits) == 3
        for key in ("doc_id", "title", "url", "published", "publisher", "text", "score", "snippet"):
            assert key in hits[0]
        assert hits[0]["doc_id"] == KK and "ขอนแก่นศึกษา" in hits[0]["text"], q


def test_search_text_output_bm25_mode(cli_env):
    r = km(cli_env, "search", "สมัชชาพังงา", "--mode", "bm25", "-k", "2")
    assert r.returncode == 0, r.stderr
    assert "สมัชชาพังงา" in r.stdout and "2021-12-08" in r.stdout


@pytest.mark.parametrize("query,msg", [
    ("", "empty"), ("   \t  ", "empty"), ("\x00\x01\x02\x7f\u200b", "empty"),
    ("ก" * (10 * 1024 * 1024), "too long"),
])
def test_bad_queries_exit_nonzero_without_traceback(fake_cli_env, query, msg):
    # argv can hold neither NUL nor 10 MB: '-' reads the query from stdin
    r = km(fake_cli_env, "search", "-", input=query)
    assert r.returncode == 2
    assert msg in r.stderr and "Traceback" not in r.stderr


def test_control_characters_in_argv_query(fake_cli_env):
    r = km(fake_cli_env, "search", "\x01\x1b\x07", "--mode", "bm25")
    assert r.returncode == 2 and "empty" in r.stderr


def test_bad_mode_and_missing_index(fake_cli_env, tmp_path):
    r = km(fake_cli_env, "search", "ขอนแก่น", "--mode", "magic")
    assert r.returncode == 2 and "unknown mode" in r.stderr and "Traceback" not in r.stderr
    env = dict(fake_cli_env, KM_SEARCH_HOME=str(tmp_path / "nothing"))
    r = km(env, "search", "ขอนแก่น", "--mode", "bm25")
    assert r.returncode == 2 and "km-search index" in r.stderr and "Traceback" not in r.stderr


def test_corrupt_index_is_reported_not_crashed(fake_work_home, fake_cli_env):
    from km_search import indexdir

    (indexdir.live_build(fake_work_home) / "passages.db").write_bytes(b"garbage" * 100)
    env = dict(fake_cli_env, KM_SEARCH_HOME=str(fake_work_home))
    r = km(env, "search", "ขอนแก่น", "--mode", "bm25")
    assert r.returncode == 2 and "rebuild" in r.stderr and "Traceback" not in r.stderr
    r = km(env, "info", "--verify")
    assert r.returncode == 2 and "checksum" in r.stderr


def test_info_shows_index(cli_env):
    r = km(cli_env, "info")
    assert r.returncode == 0, r.stderr
    assert "5 documents" in r.stdout and "dim 384" in r.stdout


def test_add_files_then_search_them(work_home, cli_env, tmp_path):
    """`km-search add` a folder with an English-only document and bad files."""
    docs = tmp_path / "drive"
    (docs / "sub").mkdir(parents=True)
    (docs / "sub" / "english.md").write_text(
        "# Smart farming pilot\n\nThe Ministry of Agriculture piloted soil moisture sensors "
        "for durian orchards, cutting water use by a third.", encoding="utf-8")
    (docs / "rubbish.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (docs / "notes.jsonl").write_text(
        json.dumps({"title": "ธนาคารปูม้า ชุมชนบ้านแหลม", "text": "ชุมชนประมงพื้นบ้านตั้งธนาคารปูม้า "
                    "เพิ่มจำนวนปูในทะเล", "url": "https://example.go.th/crab", "published": "๑๕ มี.ค. ๒๕๖๖",
                    "publisher": "กรมประมง", "tags": ["ประมง"]}, ensure_ascii=False)
        + "\n{not json\n", encoding="utf-8")
    env = dict(cli_env, KM_SEARCH_HOME=str(work_home))
    r = km(env, "add", str(docs))
    assert r.returncode == 0, r.stderr
    assert "2 new" in r.stdout and "2 errors" in r.stdout
    assert "rubbish.pdf" in r.stderr and "notes.jsonl:2" in r.stderr
    r = km(env, "search", "durian soil moisture sensors", "--json", "-k", "1", "--mode", "bm25")
    assert json.loads(r.stdout)["hits"][0]["title"] == "Smart farming pilot"
    r = km(env, "search", "ธนาคารปูม้า", "--json", "-k", "1")
    hit = json.loads(r.stdout)["hits"][0]
    assert hit["publisher"] == "กรมประมง" and hit["published"] == "2023-03-15"
    assert hit["url"] == "https://example.go.th/crab"
    r = km(env, "add", str(tmp_path / "nope"))
    assert r.returncode == 1 and "no such file" in r.stderr


def test_lessons_compare_handout_khon_kaen_vs_phang_nga(cli_env, tmp_path):
    import docx

    out = tmp_path / "handout.docx"
    r = km(cli_env, "lessons", "--compare", "6fcee9b62a8409b7#ขอนแก่น,6fcee9b62a8409b7#พังงา",
           "--out", str(out))
    assert r.returncode == 0, r.stderr
    d = docx.Document(str(out))
    text = "\n".join(p.text for p in d.paragraphs) + "\n".join(
        c.text for t in d.tables for row in t.rows for c in row.cells)
    assert "ขอนแก่นศึกษา" in text and "สมัชชาพังงา" in text
    r = km(cli_env, "lessons", "--province", "พังงา", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["doc_id"] == KK
    r = km(cli_env, "lessons", "--compare", "no-such-lesson")
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.slow  # five CLI processes and two full index builds (~40 s under load)
def test_index_command_plain_up_to_date_and_rebuild(fake_seed_home, fake_cli_env, tmp_path):
    """`km-search index` on a new home imports the seeds and builds; again, it reports the
    index up to date and keeps the build; `--rebuild` makes a new full build and drops the old."""
    import shutil

    from km_search import indexdir

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(fake_seed_home / "embed-cache.db", home / "embed-cache.db")  # no re-embedding
    n = indexdir.read_manifest(indexdir.live_build(fake_seed_home))["counts"]["passages"]
    # reload 0: no grace period, so --rebuild deletes the superseded build at once
    env = dict(fake_cli_env, KM_SEARCH_HOME=str(home), KM_SEARCH_RELOAD_SECONDS="0")
    r = km(env, "index")
    assert r.returncode == 0, r.stderr
    assert "imported 5 bundled seed documents" in r.stdout
    assert f"+5 documents, -0 removed, {n} passages embedded; now 5 documents, {n} passages (full build" in r.stdout
    first = indexdir.live_build(home)
    r = km(env, "index")
    assert r.returncode == 0 and f"index is up to date: 5 documents, {n} passages" in r.stdout
    assert "imported" not in r.stdout and indexdir.live_build(home) == first
    r = km(dict(env, KM_SEARCH_RELOAD_SECONDS="0"), "index", "--rebuild")  # no reader grace
    assert r.returncode == 0, r.stderr
    assert f"now 5 documents, {n} passages (full build" in r.stdout
    assert indexdir.live_build(home) != first and not first.exists()
    r = km(env, "search", "ปัจจัยความสำเร็จ ขอนแก่นศึกษา", "--json", "-k", "1")
    assert r.returncode == 0 and json.loads(r.stdout)["hits"][0]["doc_id"] == KK
    r = km(dict(env, KM_SEARCH_HOME=str(tmp_path / "other")), "index", "--no-seeds")
    assert r.returncode == 2 and "no documents" in r.stderr and "km-search add" in r.stderr
    assert "Traceback" not in r.stderr  # an empty store is a clear error (it was a bm25s crash)


def test_a_bad_setting_is_one_line_naming_the_variable(tmp_path):
    env = dict(os.environ, KM_SEARCH_HOME=str(tmp_path), KM_SEARCH_MODEL="fake",
               KM_SEARCH_FUSION="adaptve", COLUMNS="200")
    r = km(env, "info")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "KM_SEARCH_FUSION='adaptve' is not one of adaptive, wsum, rrf" in r.stderr


def test_distill_queries_errors_are_one_line(fake_cli_env, tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"question": "กี่ปี"}\n{"question": \n')
    r = km(fake_cli_env, "distill-queries", "--train", str(bad))
    assert r.returncode == 2 and "train.jsonl:2: not JSON" in r.stderr and "Traceback" not in r.stderr
    r = km(fake_cli_env, "distill-queries", "--layers", "0,x")
    assert r.returncode == 2 and "--layers" in r.stderr and "Traceback" not in r.stderr
    r = km(fake_cli_env, "distill-queries")  # the fake model has no layers to keep
    assert r.returncode == 2 and "ONNX runtime" in r.stderr and "Traceback" not in r.stderr


def test_eval_refuses_bad_counts_and_splits_in_one_line(fake_cli_env, tmp_path):
    data = ROOT.parent / "shared" / "data" / "iapp-wiki-qa"
    for args, msg in ((["--split", "bad"], "split must be test or valid"),
                      (["--corpus", "-3"], "--corpus take a count"),
                      (["--limit", "-1"], "--corpus take a count")):
        r = km(fake_cli_env, "eval", "--data", str(data), *args)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr

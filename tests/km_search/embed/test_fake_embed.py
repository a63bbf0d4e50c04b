"""The fake (hashed-feature) embedder behind the fast test tier."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from tests.conftest import ROOT, fake_config
from km_search.embed import get_embedder
from km_search.embed.fake import HashEmbedder

KK_TEXT = "ปัจจัยความสำเร็จของขอนแก่นศึกษา คือการมีส่วนร่วมของภาคีเครือข่ายในจังหวัด"


def test_vectors_are_unit_length_and_the_same_in_another_process(tmp_path):
    emb = get_embedder(fake_config(tmp_path))
    assert isinstance(emb, HashEmbedder)
    v = emb.encode_passages([KK_TEXT, "", "Khon Kaen Study ๒๕๖๔"])
    assert v.shape == (3, emb.dim) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    code = ("import sys; sys.path.insert(0, %r); from km_search.embed.fake import HashEmbedder; "
            "print(HashEmbedder().encode_queries([%r])[0][:8].tolist())" % (str(ROOT), KK_TEXT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert np.allclose(eval(out.stdout), emb.encode_queries([KK_TEXT])[0][:8])


def test_texts_sharing_thai_words_are_closer_than_unrelated_ones():
    emb = HashEmbedder()
    q, near, far = emb.encode_queries(["ขอนแก่นศึกษา ความสำเร็จ"])[0], *emb.encode_passages(
        [KK_TEXT, "สูตรแกงเขียวหวานไก่ใส่มะเขือเปราะ"])
    assert float(q @ near) > float(q @ far) + 0.2


def test_fingerprint_differs_from_every_real_model():
    assert HashEmbedder().fingerprint.startswith("fake-") and HashEmbedder(64).dim == 64
    assert HashEmbedder(64).fingerprint != HashEmbedder().fingerprint

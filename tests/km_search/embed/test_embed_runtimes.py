"""Runtimes of the default model: fused fp32 ONNX = torch; int8 close to both."""
import numpy as np
import pytest

from tests.conftest import make_config
from km_search.embed import get_embedder
from km_search.embed.onnx import OnnxEmbedder

pytestmark = pytest.mark.slow  # runs the real model on every runtime

TEXTS = ["ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร", "success factors for Khon Kaen Study",
         "แผนเพิ่มประสิทธิภาพองค์การ ประจำปีงบประมาณ พ.ศ. ๒๕๖๔ \u200bกระทรวงมหาดไทย",
         "จังหวัดพังงา ดำเนินการโดยปรับรูปแบบการทำงานด้วยการดึงภาคประชาชน และเครือข่ายในจังหวัด"
         "เข้ามาเป็นแกนหลักในการกำหนดความต้องการของพื้นที่ ผ่านการดำเนินการ “สมัชชาพังงา” " * 3]


def test_onnx_and_torch_runtimes_agree(embedder, tmp_path):
    assert isinstance(embedder, OnnxEmbedder) and "int8" in embedder.name  # the default runtime
    embedder = get_embedder(make_config(tmp_path, runtime="onnx"))
    torch_emb = get_embedder(make_config(tmp_path, runtime="torch"))
    assert torch_emb.fingerprint == embedder.fingerprint  # one index serves both
    q_onnx, q_torch = embedder.encode_queries(TEXTS), torch_emb.encode_queries(TEXTS)
    p_onnx, p_torch = embedder.encode_passages(TEXTS), torch_emb.encode_passages(TEXTS)
    assert (q_onnx * q_torch).sum(1).min() > 0.9999
    assert (p_onnx * p_torch).sum(1).min() > 0.9999
    assert np.allclose(np.linalg.norm(q_onnx, axis=1), 1, atol=1e-5)
    # queries and passages differ (prefixes are applied)
    assert (q_onnx * p_onnx).sum(1).max() < 0.9999


def test_unknown_runtime_is_refused(tmp_path):
    with pytest.raises(ValueError, match="runtime"):
        get_embedder(make_config(tmp_path, runtime="tpu"))


def test_onnx_graph_is_fused(embedder):
    """The export is optimised: fused attention is what makes ORT twice torch's speed."""
    import onnx

    from km_search.embed.onnx import ONNX_FILE

    g = onnx.load(str(embedder.model_dir / ONNX_FILE), load_external_data=False).graph
    ops = {n.op_type for n in g.node}
    assert {"Attention", "SkipLayerNormalization"} <= ops


def test_int8_runtime_is_close_to_fp32_but_indexed_apart(tmp_path):
    """onnx-int8: dynamic int8 of the fused graph; vectors within ~0.5% of fp32, so it gets
    its own fingerprint (an fp32 index is refused rather than searched with them)."""
    import onnx

    from km_search.embed.onnx import INT8_FILE

    fp32 = get_embedder(make_config(tmp_path, runtime="onnx"))
    int8 = get_embedder(make_config(tmp_path, runtime="onnx-int8"))
    assert int8.fingerprint != fp32.fingerprint and "int8" in int8.name
    ops = {n.op_type for n in onnx.load(str(int8.model_dir / INT8_FILE)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} & ops and {"Attention", "QAttention"} & ops
    p32, p8 = fp32.encode_passages(TEXTS), int8.encode_passages(TEXTS)
    q32, q8 = fp32.encode_queries(TEXTS[:2]), int8.encode_queries(TEXTS[:2])
    assert 0.99 < (p32 * p8).sum(1).min() < 0.99999  # close, yet really quantised
    assert (q32 * q8).sum(1).min() > 0.99
    # the same passage is nearest to each query under both
    assert ((q32 @ p32.T).argmax(1) == (q8 @ p8.T).argmax(1)).all()
    # a vector depends on its text alone, not on what else is encoded with it
    alone = np.vstack([int8.encode_passages([t]) for t in TEXTS])
    assert np.array_equal(alone, p8)


def test_this_session_exported_and_quantised_the_model(embedder):
    """conftest hands the session a models folder without onnx/: the fused graph and its
    int8 copy were built here by export_onnx/quantize_int8 (``km_search.atomic.build_once``), not reused."""
    import os

    from tests.conftest import MODELS, USER_MODELS, strict_skip
    from km_search.embed.onnx import INT8_FILE, ONNX_FILE

    if os.environ.get("KM_SEARCH_TEST_MODELS"):
        strict_skip("KM_SEARCH_TEST_MODELS reuses a prebuilt models folder")
    model_dir = embedder.model_dir
    assert model_dir.parent == MODELS.absolute() and USER_MODELS not in model_dir.parents
    onnx_dir = model_dir / "onnx"
    assert onnx_dir.is_dir() and not onnx_dir.is_symlink()
    for f in (ONNX_FILE, INT8_FILE):
        assert (model_dir / f).is_file() and not (model_dir / f).is_symlink()
    # build_once renamed its temporary files into place and left none behind
    assert not [p for p in onnx_dir.iterdir() if p.suffix in (".tmp", ".raw")]

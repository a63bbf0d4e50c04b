"""The fused ONNX Runtime graph and torch must give the same vectors."""
import numpy as np
import pytest

from conftest import make_config
from km_search.embed import get_embedder
from km_search.embed.onnx import OnnxEmbedder

TEXTS = ["ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร", "success factors for Khon Kaen Study",
         "แผนเพิ่มประสิทธิภาพองค์การ ประจำปีงบประมาณ พ.ศ. ๒๕๖๔ \u200bกระทรวงมหาดไทย",
         "จังหวัดพังงา ดำเนินการโดยปรับรูปแบบการทำงานด้วยการดึงภาคประชาชน และเครือข่ายในจังหวัด"
         "เข้ามาเป็นแกนหลักในการกำหนดความต้องการของพื้นที่ ผ่านการดำเนินการ “สมัชชาพังงา” " * 3]


def test_onnx_and_torch_runtimes_agree(embedder, tmp_path):
    assert isinstance(embedder, OnnxEmbedder)  # the default runtime
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

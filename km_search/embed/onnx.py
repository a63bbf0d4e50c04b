"""The default model on ONNX Runtime: same weights and vectors, much less overhead.

The encoder is exported once from the local sentence-transformers folder with eager
attention, so onnxruntime's BERT optimizer can fuse each layer's attention, GELU and
layer norms (12 Attention, 12 BiasGelu, 24 SkipLayerNorm, 1 EmbedLayerNorm nodes);
mean pooling + L2 norm are done here in numpy. Measured on this 2-core CPU (idle), on
96 real iapp passages: torch 8.4 passages/s, the plain (unfused) export 7.5, the fused
graph 16.4 in batches of 2 (small batches waste no padding and stay in cache; 15.1 at
4, 13.0 at 16), with vectors identical to torch (cosine >= 0.9999), so the fingerprint
and the embedding cache stay valid. Queries: p50 ~8 ms versus 24 ms on torch. Written
to ``<model>/onnx/model-fused.onnx`` beside and renamed into place; torch is imported
only to export.

The default runtime, ``onnx-int8``, quantises that graph dynamically (see
:func:`quantize_int8`): 30.5 passages/s against 14.0 on 32 whole iapp contexts, queries
p50 ~2.8 ms, and no MRR@10 lost on the iapp valid split (dense .909 vs .908).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from km_search.atomic import build_once

from .base import Embedder, encode_sorted

ONNX_FILE = Path("onnx") / "model-fused.onnx"
INT8_FILE = Path("onnx") / "model-fused-int8.onnx"
PASSAGE_BATCH = 2  # measured best for ORT on 2 cores (see the module docstring)


def _fuse(raw: Path, out: Path, model_dir: Path) -> None:
    """onnxruntime's offline BERT optimizer: fuse attention, GELU and layer norms."""
    import json

    from onnxruntime.transformers import optimizer

    cfg = json.loads((model_dir / "config.json").read_text())
    m = optimizer.optimize_model(str(raw), model_type="bert", opt_level=1,
                                 num_heads=cfg["num_attention_heads"], hidden_size=cfg["hidden_size"])
    m.save_model_to_file(str(out))


def export_onnx(model_dir: Path) -> Path:
    """Export ``model_dir``'s encoder to a fused fp32 ONNX graph unless already there."""

    def make(tmp: Path) -> None:
        import torch
        from transformers import AutoModel

        # eager attention exports the matmul/softmax pattern the optimizer knows how to fuse
        model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

        class Encoder(torch.nn.Module):  # transformers 5 takes keyword arguments only
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask):
                return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        ids = torch.tensor([[0, 100, 200, 2]], dtype=torch.long)
        raw = tmp.with_suffix(".raw")
        try:
            with torch.no_grad():
                torch.onnx.export(Encoder(model), (ids, torch.ones_like(ids)), str(raw),
                                  input_names=["input_ids", "attention_mask"],
                                  output_names=["last_hidden_state"],
                                  dynamic_axes={"input_ids": {0: "b", 1: "s"},
                                                "attention_mask": {0: "b", 1: "s"},
                                                "last_hidden_state": {0: "b", 1: "s"}},
                                  opset_version=17, dynamo=False)
            _fuse(raw, tmp, Path(model_dir))
        finally:
            raw.unlink(missing_ok=True)

    out = build_once(Path(model_dir) / ONNX_FILE, make)
    (out.parent / "model.onnx").unlink(missing_ok=True)  # the older unfused export
    return out


def quantize_int8(model_dir: Path) -> Path:
    """Dynamic int8 quantisation of the fused graph (weights int8 per channel, activations
    quantised per batch at run time), unless already there.

    ``reduce_range`` keeps weights to 7 bits: without VNNI (this Zen 3 CPU, most servers
    before Ice Lake) the u8*s8 dot products saturate on full-range weights and the vectors
    drift; with it the cosine to fp32 stays ~0.997 (measured on iapp passages).
    """
    fused = export_onnx(Path(model_dir))

    def make(tmp: Path) -> None:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        root = logging.getLogger()  # the quantiser configures the root logger (DEBUG
        saved = root.level, list(root.handlers)  # lines from bm25s followed): undo it
        try:
            quantize_dynamic(str(fused), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=True,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        finally:
            root.setLevel(saved[0])
            root.handlers[:] = saved[1]

    return build_once(Path(model_dir) / INT8_FILE, make)


class OnnxEmbedder(Embedder):
    """Mean-pooled, L2-normalised BERT embeddings on ONNX Runtime."""

    def __init__(self, model_dir: Path, *, label: str, fingerprint: str, dim: int = 384,
                 prefixes: tuple[str, str] = ("query: ", "passage: "), batch_size: int = 16,
                 max_tokens: int = 512, int8: bool = False, threads: int = 0):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = quantize_int8(Path(model_dir)) if int8 else export_onnx(Path(model_dir))
        so = ort.SessionOptions()
        # all cores by default (1 thread: hybrid p50 +1.4 ms on an idle machine); serve with
        # N workers passes cores / N so the workers' thread pools do not share cores
        so.intra_op_num_threads = threads if threads > 0 else max(1, os.cpu_count() or 1)
        so.inter_op_num_threads = 1
        # Idle pool threads must sleep, not spin: spinning kept both cores busy between the
        # ops of every query and, beside a second process, doubled a query's CPU
        # (2 threads, busy 2-core machine: 31 ms CPU per query spinning, 17 ms not).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.name, self.fingerprint, self.dim = label, fingerprint, dim
        self.query_prefix, self.passage_prefix = prefixes
        # Dynamic int8 quantises activations with one scale per batch tensor, padding
        # included, so a vector would depend on its batch-mates. One text per run makes it
        # a function of the text alone (the embedding cache and Ray builds rely on that)
        # and is also the fastest here: 31 passages/s against 27 in pairs.
        self.batch_size = 1 if int8 else batch_size
        self.model_dir = Path(model_dir)

    def _run(self, texts: list[str]) -> np.ndarray:
        encs = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), np.int64)
        mask = np.zeros((len(encs), width), np.int64)
        for i, e in enumerate(encs):
            ids[i, :len(e.ids)] = e.ids
            mask[i, :len(e.ids)] = 1
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        v = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    def _encode(self, texts: Sequence[str], progress: Callable[[int], None] | None,
                batch: int | None = None) -> np.ndarray:
        return encode_sorted(texts, batch or self.batch_size, self.dim, self._run, progress)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self.query_prefix + t for t in texts], None)

    def encode_passages(self, texts: Sequence[str],
                        progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts], progress,
                            min(self.batch_size, PASSAGE_BATCH))  # 1 for int8

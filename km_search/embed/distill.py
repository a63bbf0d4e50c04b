"""Distil a shallow query encoder from the configured model (`km-search distill-queries`).

Why (see embed/student.py): a new question's embedding is most of a search's CPU. The
student is the model with only some of its transformer layers kept (the embedding table,
which holds the multilingual vocabulary, stays as it is and frozen), trained so its
mean-pooled, normalised query vector matches the full model's: loss = (1 - cosine) +
squared distance to the teacher's vector, on texts like the questions it will see.

The student answers only questions without Latin letters (embed/student.py: on English
and mixed questions a 4-layer student lost .12 and .08 hybrid R@1 on the dev slices, on
Thai ones .005), so it trains on such texts only: short spans (2-12 words, the product's
segmenter) of the corpus's own passages, plus the questions of an optional file (one a
line; e.g. a QA set's training split). Teacher vectors are kept in the embedding cache,
so an interrupted run re-embeds nothing; the folder is written beside and renamed into
place.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from km_search.atomic import replace_dir

from .student import MANIFEST, for_student

#: Kept layers of the 12-layer default model, spread out as DistilBERT keeps every other
#: one (the first and last layers do the most specific work). The one set tried: 3x less
#: compute per question, held-out cosine to the model .965 (README, 'Query encoder').
DEFAULT_LAYERS = (0, 4, 8, 11)
RECIPE_VERSION = "1"


@dataclass
class DistillReport:
    folder: Path
    texts: int
    layers: tuple[int, ...]
    held_out_cosine: float  # mean cosine student vs teacher on texts it never trained on


def _spans(words: Sequence[str], rng: random.Random, k: int) -> list[str]:
    out = []
    for _ in range(k):
        n = rng.randint(2, 12)
        if len(words) > n:
            i = rng.randrange(len(words) - n)
            out.append("".join(words[i:i + n]).strip())
    return [s for s in out if s]


def training_texts(passages: Iterable[str], questions: Sequence[str] = (), *,
                   spans_per_passage: int = 6, max_spans: int = 20000, seed: int = 7) -> list[str]:
    """The student's training texts (see the module docstring), shuffled, deterministic:
    only texts the student will be asked (no Latin letters)."""
    from km_search.thai.tokenize import segment

    rng = random.Random(seed)
    # long documents: every 2,000 characters count as a passage; a small corpus (the five
    # seeds) gets more spans per passage, so it still yields ~max_spans of them
    windows = [segment(t[s:s + 2000], keep_whitespace=True)  # spaces kept: spans as written
               for t in passages for s in range(0, len(t), 2000)]
    per = max(spans_per_passage, math.ceil(max_spans / max(1, len(windows))))
    spans = list(dict.fromkeys(s for words in windows for s in _spans(words, rng, per)))
    rng.shuffle(spans)
    texts = [t for t in dict.fromkeys([q.strip() for q in questions] + spans[:max_spans])
             if t and for_student(t)]
    rng.shuffle(texts)
    return texts


def train_student(src: Path, texts: Sequence[str], targets: np.ndarray, dest: Path, *,
                  prefix: str, teacher: str, layers: Sequence[int] = DEFAULT_LAYERS,
                  epochs: float = 2.0, batch: int = 32, lr: float = 2e-4, held_out: int = 1000,
                  seed: int = 0, progress: Callable[[int, int], None] | None = None) -> DistillReport:
    """Train the student on (text, teacher vector) pairs and write it to ``dest``."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    torch.manual_seed(seed)
    rng = random.Random(seed)
    src, dest = Path(src), Path(dest)
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    tok.enable_truncation(64)
    pad = tok.token_to_id("<pad>") or 0
    enc = [e.ids for e in tok.encode_batch([prefix + t for t in texts])]
    tgt = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
    idx = list(range(len(texts)))
    rng.shuffle(idx)
    val, tr = idx[:min(held_out, len(idx) // 5)], idx[min(held_out, len(idx) // 5):]

    model = AutoModel.from_pretrained(str(src), attn_implementation="eager")
    model.encoder.layer = torch.nn.ModuleList([model.encoder.layer[i] for i in layers])
    model.config.num_hidden_layers = len(layers)
    for p in model.embeddings.parameters():
        p.requires_grad = False  # 250k x 384: frozen keeps the vocabulary and the cost down

    def tensors(rows: list[int]):
        width = max(len(enc[j]) for j in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, j in enumerate(rows):
            ids[i, :len(enc[j])] = torch.tensor(enc[j])
            mask[i, :len(enc[j])] = 1
        return ids, mask

    def embed(rows: list[int]):
        ids, mask = tensors(rows)
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        v = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return torch.nn.functional.normalize(v, dim=-1)

    def held_out_cosine() -> float:
        model.eval()
        with torch.no_grad():
            cos = [(embed(val[s:s + 128]) * tgt[val[s:s + 128]]).sum(-1) for s in range(0, len(val), 128)]
        model.train()
        return torch.cat(cos).mean().item() if cos else float("nan")

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps, step = int(math.ceil(len(tr) / batch) * epochs), 0
    model.train()
    while step < steps:
        # batches of similar length (little padding), in random order
        order = sorted(rng.sample(tr, len(tr)), key=lambda j: len(enc[j]) + rng.random() * 4)
        batches = [order[s:s + batch] for s in range(0, len(order), batch)]
        rng.shuffle(batches)
        for rows in batches[: steps - step]:
            for g in opt.param_groups:  # 100 warm-up steps, then linear decay
                g["lr"] = lr * min(1.0, (step + 1) / 100) * max(0.0, 1 - step / steps)
            v, t = embed(rows), tgt[rows]
            loss = (1 - (v * t).sum(-1)).mean() + ((v - t) ** 2).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if progress:
                progress(step, steps)
    cosine = held_out_cosine()

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    model.save_pretrained(str(tmp))
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / f).exists():
            shutil.copyfile(src / f, tmp / f)
    with open(tmp / "model.safetensors", "rb") as fh:  # ~400 MB: streamed, not read whole
        digest = hashlib.file_digest(fh, "sha1").hexdigest()[:16]
    (tmp / MANIFEST).write_text(json.dumps({
        "recipe": RECIPE_VERSION, "teacher": teacher, "prefix": prefix, "layers": list(layers),
        "epochs": epochs, "texts": len(texts), "held_out_cosine": round(cosine, 4),
        "fingerprint": f"{teacher}-student-{digest}"}, indent=1))
    replace_dir(tmp, dest)
    return DistillReport(dest, len(texts), tuple(layers), cosine)


def read_training_file(path: Path) -> tuple[list[str], list[str]]:
    """(passages, questions) of a JSONL file ('context' or 'text', 'question' fields) or
    of a plain text file (each line a question)."""
    passages: list[str] = []
    questions: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            if path.suffix != ".jsonl":
                questions.append(line)
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{path}:{n}: not JSON ({e})") from None
            if isinstance(rec, dict):
                questions += [rec["question"]] if isinstance(rec.get("question"), str) else []
                ctx = rec.get("context", rec.get("text"))
                passages += [ctx] if isinstance(ctx, str) else []
    return list(dict.fromkeys(passages)), questions


def distill_queries(cfg, dest: Path | None = None, *, passages: Iterable[str] | None = None,
                    questions: Sequence[str] = (), layers: Sequence[int] = DEFAULT_LAYERS,
                    epochs: float = 2.0, max_texts: int = 0,
                    progress: Callable[[str, int, int], None] | None = None) -> DistillReport:
    """Distil the configured model's query encoder into ``dest`` (default
    ``<models_dir>/query-student``). ``passages``: texts to cut spans from (default: every
    document of the corpus); ``questions``: extra training questions; ``max_texts``: use
    only the first N training texts (tests)."""
    from km_search.docstore import DocumentStore

    from .cache import EmbeddingCache
    from .registry import get_embedder

    base = get_embedder(dataclasses.replace(cfg, query_model=None))
    if not hasattr(base, "model_dir"):
        raise ValueError("distill-queries needs the ONNX runtime of a local model (KM_SEARCH_RUNTIME=onnx-int8 or onnx)")
    if passages is None:
        with DocumentStore(cfg.corpus_db) as store:
            passages = [d.text for d in store.iter_documents()]
    texts = training_texts(passages, questions)[: max_texts or None]
    if len(texts) < 200:
        raise ValueError(f"only {len(texts)} training texts: index some documents first")
    cache, key, targets = EmbeddingCache(cfg.cache_db), base.query_fingerprint + "|query", []
    try:  # teacher vectors in chunks, each stored as it is done: a rerun resumes here
        for s in range(0, len(texts), 256):
            targets.append(cache.cached(key, texts[s:s + 256], base.encode_queries))
            if progress:
                progress("teacher vectors", min(s + 256, len(texts)), len(texts))
    finally:
        cache.close()
    return train_student(base.model_dir, texts, np.concatenate(targets),
                         Path(dest or cfg.models_dir / "query-student"),
                         prefix=base.query_prefix, teacher=base.fingerprint, layers=layers,
                         epochs=epochs,
                         progress=(lambda d, t: progress("training", d, t)) if progress else None)

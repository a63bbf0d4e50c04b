"""`km-search eval`: passage retrieval on iapp-wiki-qa, plus English questions over the seeds.

Protocol (../shared/data/iapp-wiki-qa/README.md): corpus = every unique context of the
three splits, queries = the test questions, gold = the question's own context. Each
context is indexed as a document through the normal indexer (so chunking, tokenising
and the embedding cache are the product's own), and a question's rank is that of the
first passage of its gold context. Fusion is tuned on ``valid`` only (``--tune``).
"""
from __future__ import annotations

import hashlib
import json
import statistics
import time
import zipfile
from pathlib import Path
from typing import Callable

from corpus.seeds import bundled_seeds
from indexer import update_index
from km_search.docstore import DocumentStore
from km_search.indexdir import IndexMissing
from km_search.models import Document
from km_search.retrieval.fusion import fuse
from km_search.search import Searcher, clean_query, query_tokens
from km_search.settings import Config, load_config

SEED_QUESTIONS = Path(__file__).parent / "data" / "seed_questions.jsonl"


def load_iapp(data_dir: Path) -> dict[str, list[dict]]:
    with zipfile.ZipFile(data_dir / "data.zip") as z:
        return {sp: [json.loads(line) for line in z.read(f"data/{sp}.jsonl").decode().splitlines()
                     if line.strip()] for sp in ("train", "valid", "test")}


def _ctx_id(context: str) -> str:
    return "iapp-" + hashlib.sha1(context.encode("utf-8")).hexdigest()[:16]


def _metrics(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks) or 1
    r = lambda k: sum(1 for x in ranks if x is not None and x <= k) / n  # noqa: E731
    mrr = sum(1.0 / x for x in ranks if x is not None and x <= 10) / n
    return {"R@1": r(1), "R@5": r(5), "R@10": r(10), "MRR@10": mrr, "n": len(ranks)}


def _doc_ranks(searcher, queries: list[tuple[str, str]], mode: str, **fusion) -> list[int | None]:
    """Rank of the gold document (by its best passage) for each (question, gold id)."""
    ranks = []
    for q, gold in queries:
        q = clean_query(q, 10_000)
        if fusion and mode == "hybrid":
            ranked = fuse(fusion["_b"][q], fusion["_d"][q], fusion["method"], fusion["w"])
        else:
            ranked, _, _ = searcher.retrieve(q, mode)
        seen: list[str] = []
        pos = None
        for pid, _ in ranked:
            doc = searcher.doc_of(pid)
            if doc not in seen:
                seen.append(doc)
                if doc == gold:
                    pos = len(seen)
                    break
            if len(seen) >= 10:
                break
        ranks.append(pos)
    return ranks


def _build(cfg: Config, home: Path, docs, log) -> "object":
    # Share the main embedding cache and model folder: eval re-runs never re-embed or
    # rebuild the model.
    sub = load_config(**{**cfg.values, "home": str(home), "embed_cache": str(cfg.cache_db),
                         "models_dir": str(cfg.models_dir)})
    with DocumentStore(sub.corpus_db) as store:
        keep = {d.doc_id for d in docs}
        store.delete([d for d in store.hashes() if d not in keep])
        store.upsert(docs)
    t0 = time.perf_counter()
    last = [0.0]

    def prog(stage: str, done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 30 or done == total:
            last[0] = time.perf_counter()
            log(f"  {stage}: {done}/{total} ({time.perf_counter() - t0:.0f}s)")
    st = update_index(sub, progress=prog)
    log(f"  index: {st.documents} docs, {st.passages} passages, {st.embedded} embedded/looked up "
        f"in {st.seconds:.0f}s")
    return Searcher(sub)


def encode_throughput(emb, texts: list[str], repeats: int = 3) -> float:
    """Median passages/s of the embedder on ``texts`` (no cache)."""
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        emb.encode_passages(texts)
        rates.append(len(texts) / (time.perf_counter() - t0))
    return statistics.median(rates)


def run(cfg: Config, data_dir: Path, split: str = "test", limit: int = 0, tune: bool = False,
        english: bool = True, log: Callable[[str], None] = print) -> dict:
    if split not in ("test", "valid"):
        raise ValueError("split must be test or valid")
    if tune and split != "valid":
        raise ValueError("--tune is only allowed on the valid split (never tune on test)")
    if not (data_dir / "data.zip").exists():
        raise IndexMissing(f"no iapp-wiki-qa data at {data_dir} (expected data.zip)")
    data = load_iapp(data_dir)
    contexts: dict[str, str] = {}
    for sp in ("train", "valid", "test"):
        for r in data[sp]:
            contexts.setdefault(r["context"], r["title"])
    docs = [Document(doc_id=_ctx_id(c), title=t, body=c, source="iapp") for c, t in contexts.items()]
    log(f"iapp-wiki-qa: {len(docs)} passages, {len(data[split])} {split} questions")
    s = _build(cfg, cfg.home_path / "eval" / "iapp", docs, log)
    queries = [(r["question"], _ctx_id(r["context"])) for r in data[split]]
    if limit:
        queries = queries[:limit]
    res: dict = {"split": split, "corpus": len(docs), "questions": len(queries),
                 "passages": s.manifest["counts"]["passages"], "model": s.manifest["model"]["name"],
                 "fusion": {"method": cfg.fusion, "bm25_weight": cfg.bm25_weight}, "modes": {}}
    for mode in ("bm25", "dense", "hybrid"):
        t0 = time.perf_counter()
        res["modes"][mode] = _metrics(_doc_ranks(s, queries, mode))
        res["modes"][mode]["ms_per_query"] = 1000 * (time.perf_counter() - t0) / max(1, len(queries))
        log(f"  {mode}: {res['modes'][mode]}")
    if tune:
        res["tuning"] = _tune(s, queries, log)
    sample = [p for p, _ in list(contexts.items())[:32]]
    res["encode_passages_per_s"] = encode_throughput(s.embedder, sample)
    if english:
        res["seeds_en"] = run_seed_questions(cfg, log)
    return res


def _tune(s, queries, log) -> list[dict]:
    b, d = {}, {}
    for q, _ in queries:
        qc = clean_query(q, 10_000)
        b[qc] = s.lexical.search(query_tokens(qc), 100)
        d[qc] = s.vectors.search(s.embedder.encode_queries([qc])[0], 100)
    rows = []
    for method, ws in (("rrf", [0.5]), ("wsum", [0.2, 0.3, 0.4, 0.5, 0.6, 0.7])):
        for w in ws:
            m = _metrics(_doc_ranks(s, queries, "hybrid", _b=b, _d=d, method=method, w=w))
            rows.append({"method": method, "bm25_weight": w, **m})
            log(f"  tune {method} w={w}: R@1 {m['R@1']:.3f} MRR@10 {m['MRR@10']:.3f}")
    return rows


def run_seed_questions(cfg: Config, log: Callable[[str], None] = print) -> dict:
    """English (and Thai) questions over the seed corpus: cross-lingual check."""
    qs = [json.loads(line) for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines()
          if line.strip()]
    log(f"seed questions: {len(qs)} over {len(bundled_seeds())} seed documents")
    s = _build(cfg, cfg.home_path / "eval" / "seeds", bundled_seeds(), log)
    out = {}
    for lang in sorted({q["lang"] for q in qs}):
        sub = [q for q in qs if q["lang"] == lang]
        out[lang] = {}
        for mode in ("bm25", "dense", "hybrid"):
            ranks = _doc_ranks(s, [(q["question"], q["doc_id"]) for q in sub], mode)
            m = _metrics(ranks)
            hits1 = 0
            for q in sub:  # passage level: does the top passage hold the gold phrase?
                top = s.search(q["question"], k=1, mode=mode)
                hits1 += bool(top and q["phrase"] in top[0].text)
            m["passage@1"] = hits1 / len(sub)
            out[lang][mode] = m
            log(f"  seeds {lang} {mode}: {m}")
    return out


def load_judgements(path: Path) -> dict[str, set[str]]:
    """question -> relevant doc ids, from relevance-judgement JSON Lines (the API's
    /feedback/judgements.jsonl, or seed_questions.jsonl-style files without 'relevance')."""
    out: dict[str, set[str]] = {}
    for no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            j = json.loads(line)
            q, doc = j["question"], j["doc_id"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValueError(f"{path}:{no}: not a judgement (needs 'question' and 'doc_id')") from None
        rel = out.setdefault(q, set())
        if int(j.get("relevance", 1)) > 0:
            rel.add(doc)
    return {q: docs for q, docs in out.items() if docs}


def run_judgements(cfg: Config, path: Path, log: Callable[[str], None] = print) -> dict:
    """Score the live index against users' relevance judgements (doc-level ranks)."""
    judged = load_judgements(path)
    if not judged:
        raise ValueError(f"{path} holds no positive judgements")
    s = Searcher(cfg)
    res: dict = {"judgements": str(path), "questions": len(judged), "modes": {}}
    for mode in ("bm25", "dense", "hybrid"):
        ranks = []
        for q, rel in judged.items():
            docs: list[str] = []
            for h in s.search(q, k=10, mode=mode, max_per_doc=1):
                docs.append(h.doc_id)
            ranks.append(next((i + 1 for i, d in enumerate(docs) if d in rel), None))
        res["modes"][mode] = _metrics(ranks)
        log(f"  judgements {mode}: {res['modes'][mode]}")
    return res


def format_table(res: dict) -> str:
    if "judgements" in res:
        lines = [f"{res['questions']} judged questions from {res['judgements']} against the live index",
                 f"{'mode':8} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR@10':>7}"]
        for mode, m in res["modes"].items():
            lines.append(f"{mode:8} {m['R@1']:6.3f} {m['R@5']:6.3f} {m['R@10']:6.3f} {m['MRR@10']:7.3f}")
        return "\n".join(lines)
    lines = [f"iapp-wiki-qa {res['split']}: {res['questions']} questions over {res['corpus']} "
             f"contexts ({res['passages']} passages), model {res['model']}",
             f"{'mode':8} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR@10':>7} {'ms/q':>7}"]
    for mode, m in res["modes"].items():
        lines.append(f"{mode:8} {m['R@1']:6.3f} {m['R@5']:6.3f} {m['R@10']:6.3f} "
                     f"{m['MRR@10']:7.3f} {m['ms_per_query']:7.1f}")
    lines.append(f"fusion: {res['fusion']}; encode throughput "
                 f"{res['encode_passages_per_s']:.1f} passages/s (median of 3, 32 passages)")
    for row in res.get("tuning", []):
        lines.append(f"  tune {row['method']:4} w={row['bm25_weight']:.1f}  R@1 {row['R@1']:.3f} "
                     f"MRR@10 {row['MRR@10']:.3f}")
    for lang, modes in res.get("seeds_en", {}).items():
        for mode, m in modes.items():
            lines.append(f"seeds {lang:2} {mode:7} R@1 {m['R@1']:.3f} MRR@10 {m['MRR@10']:.3f} "
                         f"passage@1 {m['passage@1']:.3f} (n={m['n']})")
    return "\n".join(lines)

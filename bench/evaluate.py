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

from dataclasses import asdict

import numpy as np

from corpus.seeds import bundled_seeds
from indexer import update_index
from km_search.docstore import DocumentStore
from km_search.embed.cache import EmbeddingCache
from km_search.indexdir import IndexMissing
from km_search.models import Document
from km_search.retrieval.fusion import DEFAULT_ADAPTIVE, Adaptive, fuse
from km_search.search import Searcher, clean_query, query_tokens
from km_search.settings import Config, load_config

DATA = Path(__file__).parent / "data"
SEED_QUESTIONS = DATA / "seed_questions.jsonl"
IAPP_EN = DATA / "iapp_en.jsonl"  # our English versions of iapp valid/test questions
IAPP_MIXED_TERMS = DATA / "iapp_mixed_terms.tsv"  # Thai term -> English, for the mixed slice
QUERY_SETS = ("th", "en", "mixed")


def load_iapp(data_dir: Path) -> dict[str, list[dict]]:
    with zipfile.ZipFile(data_dir / "data.zip") as z:
        return {sp: [json.loads(line) for line in z.read(f"data/{sp}.jsonl").decode().splitlines()
                     if line.strip()] for sp in ("train", "valid", "test")}


def _ctx_id(context: str) -> str:
    return "iapp-" + hashlib.sha1(context.encode("utf-8")).hexdigest()[:16]


def iapp_docs(data: dict[str, list[dict]]) -> list:
    """Every unique context of the three splits, as a Document (the eval corpus)."""
    contexts: dict[str, str] = {}
    for sp in ("train", "valid", "test"):
        for r in data[sp]:
            contexts.setdefault(r["context"], r["title"])
    return [Document(doc_id=_ctx_id(c), title=t, body=c, source="iapp") for c, t in contexts.items()]


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
    s = Searcher(sub)
    s._embedder = _QueryVectors(s.embedder, sub.cache_db)
    return s


def encode_throughput(emb, texts: list[str], repeats: int = 3) -> float:
    """Median passages/s of the embedder on ``texts`` (no cache)."""
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        emb.encode_passages(texts)
        rates.append(len(texts) / (time.perf_counter() - t0))
    return statistics.median(rates)


def limit_corpus(docs: list, gold: list[str], n: int) -> list:
    """The gold contexts of the asked questions, then the other contexts in file order, up
    to ``n`` documents (0 = all). Fewer distractors make retrieval easier, so figures on a
    limited corpus compare only with runs of the same limit (results/eval-test-limit*.json),
    never with a full run's."""
    if not n:
        return docs
    want = set(gold)
    first = [d for d in docs if d.doc_id in want]
    return first + [d for d in docs if d.doc_id not in want][:max(0, n - len(first))]


def run(cfg: Config, data_dir: Path, split: str = "test", limit: int = 0, tune: bool = False,
        english: bool = True, log: Callable[[str], None] = print, corpus_limit: int = 0) -> dict:
    if split not in ("test", "valid"):
        raise ValueError("split must be test or valid")
    if limit < 0 or corpus_limit < 0:
        raise ValueError("--limit and --corpus take a count of 0 or more")
    if tune and split != "valid":
        raise ValueError("--tune is only allowed on the valid split (never tune on test)")
    if not (data_dir / "data.zip").exists():
        raise IndexMissing(f"no iapp-wiki-qa data at {data_dir} (expected data.zip)")
    data = load_iapp(data_dir)
    queries = [(r["question"], _ctx_id(r["context"])) for r in data[split]]
    if limit:
        queries = queries[:limit]
    docs = limit_corpus(iapp_docs(data), [g for _, g in queries], corpus_limit)
    contexts = {d.body: d.title for d in docs}
    log(f"iapp-wiki-qa: {len(docs)} passages, {len(queries)} {split} questions")
    s = _build(cfg, cfg.home_path / "eval" / ("iapp" if not corpus_limit else f"iapp-{corpus_limit}"),
               docs, log)
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


# -- slices: Thai / English / mixed iapp questions and Tatoeba both ways ------------------
# Dev slices (constants are chosen on these): iapp valid (th, en, mixed) and the even
# lines of Tatoeba; held-out slices: iapp test (th, en) and the odd lines of Tatoeba.
def iapp_queries(data: dict[str, list[dict]], split: str, lang: str) -> list[tuple[str, str]]:
    """(question, gold context id) of one iapp split in one query language.

    ``en``: our own English versions (km_search/data/iapp_en.jsonl, see the README there);
    ``mixed``: the Thai question with its key term written in English, as Thai users often
    type it (built from iapp_mixed_terms.tsv; only questions holding such a term)."""
    rows = data[split]
    if lang == "th":
        return [(r["question"], _ctx_id(r["context"])) for r in rows]
    if lang == "en":
        en = {j["question_id"]: j["question"] for j in map(json.loads, IAPP_EN.read_text(
            encoding="utf-8").splitlines()) if j["split"] == split}
        return [(en[r["question_id"]], _ctx_id(r["context"])) for r in rows if r["question_id"] in en]
    if lang == "mixed":
        terms = [tuple(line.split("\t")) for line in IAPP_MIXED_TERMS.read_text(
            encoding="utf-8").splitlines() if "\t" in line]
        terms.sort(key=lambda t: -len(t[0]))  # longest Thai term first
        out = []
        for r in rows:
            q = r["question"]
            for th, en in terms:
                if th in q:
                    out.append((q.replace(th, en, 1), _ctx_id(r["context"])))
                    break
        return out
    raise ValueError(f"unknown query set '{lang}': choose one of {', '.join(QUERY_SETS)}")


def load_tatoeba(data_dir: Path) -> list[tuple[str, str]]:
    """(Thai, English) sentence pairs, line i of one file translating line i of the other."""
    th = (data_dir / "tatoeba.tha-eng.tha").read_text(encoding="utf-8").splitlines()
    en = (data_dir / "tatoeba.tha-eng.eng").read_text(encoding="utf-8").splitlines()
    if len(th) != len(en) or not th:
        raise ValueError(f"{data_dir}: the .tha and .eng files must have the same, non-zero "
                         f"number of lines ({len(th)} vs {len(en)})")
    return list(zip(th, en))


def tatoeba_half(n: int, split: str) -> list[int]:
    """Deterministic halves: dev = even line numbers (0-based), test = odd ones."""
    return list(range(0 if split == "dev" else 1, n, 2))


class _QueryVectors:
    """The searcher's embedder with query vectors kept in the embedding cache (under the
    query fingerprint + '|query'), so re-running an evaluation never re-embeds a question."""

    def __init__(self, emb, cache_path: Path):
        self._emb, self._cache = emb, EmbeddingCache(cache_path)
        self.name, self.dim, self.fingerprint = emb.name, emb.dim, emb.fingerprint

    def encode_queries(self, texts):
        return self._cache.cached(self.query_fingerprint + "|query", texts,
                                  self._emb.encode_queries)

    def __getattr__(self, name):
        return getattr(self._emb, name)


def _gold_rank(searcher, pids, gold: str, doc_of: dict) -> int | None:
    seen: list[str] = []
    for pid in pids:
        if pid not in doc_of:
            doc_of[pid] = searcher.doc_of(pid)
        if doc_of[pid] not in seen:
            seen.append(doc_of[pid])
            if doc_of[pid] == gold:
                return len(seen)
        if len(seen) >= 10:
            return None
    return None


class Slice:
    """One slice's probes (each retriever's candidates per question), kept so that fusion
    constants can be swept without searching again."""

    def __init__(self, searcher, queries: list[tuple[str, str]]):
        self.searcher, self.golds, self.doc_of = searcher, [g for _, g in queries], {}
        if not hasattr(searcher, "probe"):  # a Searcher from before probes (the "before" runs)
            self.probes = [searcher.retrieve(clean_query(q, 10_000), "hybrid") for q, _ in queries]
            return
        self.probes = [searcher.probe(clean_query(q, 10_000), "hybrid") for q, _ in queries]

    def ranks(self, mode: str, params=None) -> list[int | None]:
        out = []
        for pr, gold in zip(self.probes, self.golds):
            if isinstance(pr, tuple):  # (ranked, parts, tokens) from retrieve()
                pids = [p for p, _ in pr[0]] if mode == "hybrid" else list(pr[1].get(mode, {}))
            elif mode == "bm25":
                pids = pr.bm25[0].tolist()
            elif mode == "dense":
                pids = pr.dense[0].tolist()
            else:
                pids = [p for p, _ in self.searcher.fuse(pr, params)]
            out.append(_gold_rank(self.searcher, pids, gold, self.doc_of))
        return out

    def metrics(self, params=None) -> dict[str, dict]:
        return {mode: _metrics(self.ranks(mode, params)) for mode in ("bm25", "dense", "hybrid")}


def _slice_modes(searcher, queries: list[tuple[str, str]], keep: dict | None = None,
                 name: str = "") -> dict[str, dict]:
    """bm25 / dense / hybrid metrics from one probe per query (the single retrievers'
    rankings are the candidate lists the fusion saw, in their own order)."""
    sl = Slice(searcher, queries)
    if keep is not None:
        keep[name] = sl
    return sl.metrics()


def tune_grid() -> list[Adaptive]:
    """The settings ``--tune`` sweeps: BM25 weights and coverage power around the ones the
    first sweep chose (results/eval-tune-adaptive.json), crossed with the confidence shift
    (``gap`` 0 = off) and the depth its top gap is measured at."""
    return [Adaptive(w_thai=wt, w_latin=wl, power=pw, gap=g, gap_depth=gd)
            for pw in (0.5, 1.0) for wt in (0.6, 0.7) for wl in (0.4, 0.5)
            for g in (0.0, 0.1, 0.2, 0.3, 0.5) for gd in (5, 10)]


def tune_adaptive(slices: dict[str, Slice], log: Callable[[str], None] = print,
                  grid: list[Adaptive] | None = None) -> dict:
    """Sweep the adaptive-fusion constants over dev slices. Chosen: the best mean hybrid
    MRR@10 among settings where hybrid >= max(bm25, dense) (R@1 and MRR@10) on every
    slice; if none qualifies, the best mean MRR@10."""
    grid = grid or tune_grid()
    base = {n: sl.metrics() for n, sl in slices.items()}
    rows = []
    for p in grid:
        per = {n: _metrics(sl.ranks("hybrid", p)) for n, sl in slices.items()}
        ok = all(per[n]["R@1"] >= max(base[n]["bm25"]["R@1"], base[n]["dense"]["R@1"]) - 1e-9
                 and per[n]["MRR@10"] >= max(base[n]["bm25"]["MRR@10"], base[n]["dense"]["MRR@10"]) - 1e-9
                 for n in per)
        mean = sum(m["MRR@10"] for m in per.values()) / len(per)
        rows.append({**asdict(p), "ok": ok,
                     "mean_MRR@10": mean,
                     "slices": {n: [round(m["R@1"], 4), round(m["MRR@10"], 4)] for n, m in per.items()}})
        log(f"  tune w_thai={p.w_thai} w_latin={p.w_latin} power={p.power} gap={p.gap}/"
            f"{p.gap_depth}: mean MRR@10 {mean:.4f}"
            f"{' (hybrid >= both everywhere)' if ok else ''}")
    pool = [r for r in rows if r["ok"]] or rows
    best = max(pool, key=lambda r: r["mean_MRR@10"])
    return {"rows": rows, "best": best, "single": {n: {k: base[n][k] for k in ("bm25", "dense")}
                                                   for n in base}}


def run_slices(cfg: Config, split: str, queries: tuple[str, ...] = QUERY_SETS,
               sets: tuple[str, ...] = ("iapp", "tatoeba"), iapp_dir: Path | None = None,
               tatoeba_dir: Path | None = None, limit: int = 0, tune: bool = False,
               log: Callable[[str], None] = print) -> dict:
    """Every slice of one split: ``dev`` (iapp valid, Tatoeba even lines) or ``test``
    (iapp test, Tatoeba odd lines). The mixed slice exists for dev only."""
    if split not in ("dev", "test"):
        raise ValueError("split must be dev or test")
    if tune and split != "dev":
        raise ValueError("--tune is only allowed on the dev split (never tune on test)")
    res: dict = {"split": split, "fusion": fusion_summary(cfg), "slices": {}}
    kept: dict[str, Slice] = {}
    if "iapp" in sets:
        if not iapp_dir or not (iapp_dir / "data.zip").exists():
            raise ValueError(f"no iapp-wiki-qa data at {iapp_dir} (expected data.zip)")
        data = load_iapp(iapp_dir)
        s = _build(cfg, cfg.home_path / "eval" / "iapp", iapp_docs(data), log)
        isplit = "valid" if split == "dev" else "test"
        for lang in queries:
            if lang == "mixed" and split == "test":
                continue
            qs = iapp_queries(data, isplit, lang)[: limit or None]
            name = f"iapp-{lang}-{isplit}"
            res["slices"][name] = m = _slice_modes(s, qs, kept, name)
            log(f"  iapp {lang} {isplit}: " + _brief(m))
    if "tatoeba" in sets:
        if not tatoeba_dir or not (tatoeba_dir / "tatoeba.tha-eng.tha").exists():
            raise ValueError(f"no Tatoeba data at {tatoeba_dir} (expected tatoeba.tha-eng.tha/.eng)")
        pairs = load_tatoeba(tatoeba_dir)
        half = tatoeba_half(len(pairs), split)[: limit or None]
        for name, side, other in (("en2th", 0, 1), ("th2en", 1, 0)):
            docs = [Document(doc_id=f"tatoeba-{name}-{i}", title="", body=p[side], source="tatoeba")
                    for i, p in enumerate(pairs)]
            s = _build(cfg, cfg.home_path / "eval" / f"tatoeba-{name}", docs, log)
            qs = [(pairs[i][other], f"tatoeba-{name}-{i}") for i in half]
            res["slices"][f"tatoeba-{name}-{split}"] = m = _slice_modes(s, qs, kept, f"tatoeba-{name}-{split}")
            log(f"  tatoeba {name} {split}: " + _brief(m))
    if tune:
        res["tuning"] = tune_adaptive(kept, log)
    return res


def fusion_summary(cfg: Config) -> dict:
    out = {"method": cfg.fusion, "bm25_weight": cfg.bm25_weight}
    if cfg.fusion == "adaptive":
        out.update(asdict(DEFAULT_ADAPTIVE), w_thai=cfg.bm25_weight)
    if cfg.lexicon:
        out["lexicon"] = cfg.lexicon
    out["places_en"] = cfg.places_en
    out["thai_ngrams"], out["thai_ngram_weight"] = cfg.thai_ngrams, cfg.thai_ngram_weight
    return out


def _brief(m: dict) -> str:
    return "  ".join(f"{mode} {v['R@1']:.3f}/{v['MRR@10']:.3f}" for mode, v in m.items())


def format_slices(res: dict) -> str:
    lines = [f"split {res['split']}; fusion {res['fusion']}",
             f"{'slice':24} {'n':>4}  {'bm25 R@1/MRR':>13}  {'dense R@1/MRR':>13}  {'hybrid R@1/MRR':>14}"]
    for name, m in res["slices"].items():
        cells = "  ".join(f"{m[k]['R@1']:.3f} / {m[k]['MRR@10']:.3f}" for k in ("bm25", "dense", "hybrid"))
        lines.append(f"{name:24} {m['hybrid']['n']:4}  {cells}")
    return "\n".join(lines)

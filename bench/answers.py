"""Answer quality: does the chat's answer hold the gold sentence, and is it about the
right entity? And does "no good answer" hold on a corpus its threshold was not set on?

    km-search eval --answers [--json results/answers.json]

Questions (``bench/data/answer_questions.jsonl``, written for this project): over the
five seeds and over the report-style held-out documents (``km_search/data/heldout``).
Each has gold phrases (all must be in the answer; an enumeration must be listed in
full), an expected entity (a province that must be named) and words that must not
appear (the other case of the same document). The index holds the seeds and the
held-out documents together.

Threshold study: the gate's constants were set on the seed corpus (dev: seed questions
vs ``unrelated_questions.jsonl``). The second corpus is built separately: iapp-wiki-qa
test contexts (Thai Wikipedia) plus the held-out documents. Answerable = iapp questions
on included contexts and the held-out questions; unrelated = iapp questions whose
context is not in that corpus (real questions on other topics). Reported: how often each
kind gets an answer, for the current gate and for the old fixed BM25 >= 1.9 gate.
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any, Callable

from km_search.docstore import DocumentStore
from km_search.models import Document
from km_search.settings import Config

DATA = Path(__file__).parent / "data"
QUESTIONS = DATA / "answer_questions.jsonl"
UNRELATED = DATA / "unrelated_questions.jsonl"

Answerer = Callable[[str, list, Any], Any]  # (question, hits, cfg) -> Answer-like (.text, .found, .cited)


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _norm(s: str) -> str:
    return re.sub(r"\s+", "", s).replace("ํา", "ำ")


def corpus_documents() -> list[Document]:
    from bench.lessons import heldout_documents
    from corpus.seeds import bundled_seeds

    return list(bundled_seeds()) + heldout_documents()


def build_home(cfg: Config, home: Path, docs: list[Document], log: Callable[[str], None] = print):
    from bench.evaluate import _build

    return _build(cfg, home, docs, log)


def judge(q: dict, text: str, found: bool) -> dict:
    t = _norm(text)
    gold = found and all(_norm(g) in t for g in q["gold"])
    ent = found and (q["entity"] is None or _norm(q["entity"]) in t) and not any(
        _norm(a) in t for a in q.get("avoid", []))
    return {"gold": gold, "entity": ent}


def run_questions(searcher: Any, answer: Answerer, questions: list[dict]) -> dict:
    rows = []
    for q in questions:
        hits = searcher.search(q["question"], k=5)
        a = answer(q["question"], hits, searcher.cfg)
        rows.append({"question": q["question"], "corpus": q["corpus"], "found": a.found,
                     "answer": a.text, **judge(q, a.text, a.found)})
    n = len(rows)
    out = {"n": n, "found": sum(r["found"] for r in rows) / n,
           "gold_sentence_rate": sum(r["gold"] for r in rows) / n,
           "right_entity_rate": sum(r["entity"] for r in rows) / n, "rows": rows}
    for corpus in ("seed", "heldout"):
        part = [r for r in rows if r["corpus"] == corpus]
        if part:
            out[corpus] = {"n": len(part), "gold_sentence_rate": sum(r["gold"] for r in part) / len(part),
                           "right_entity_rate": sum(r["entity"] for r in part) / len(part)}
    return out


def current_answerer(cards: Any = None) -> Answerer:
    from km_search.answer import extractive

    return lambda q, hits, cfg: extractive(q, hits, cfg, cards)


def gate_rates(searcher: Any, answerable: list[str], unrelated: list[str], cfg: Config) -> dict:
    """Share answered, per kind, for the current gate and the old fixed BM25 gate."""
    from km_search.answer import strong_hits

    def rate(qs: list[str], gate) -> float:
        return sum(bool(gate(searcher.search(q, k=5), q)) for q in qs) / max(1, len(qs))

    from km_search.settings import load_config

    gates = {"current": lambda hits, q: strong_hits(hits, cfg, q),
             "coverage_or_bm25_3.5": lambda hits, q: strong_hits(
                 hits, load_config(**{**cfg.values, "answer_min_bm25": 3.5}), q),
             "old_bm25_1.9": lambda hits, q: hits and hits[0].scores.get("bm25", 0.0) >= 1.9}
    out: dict = {"answerable_n": len(answerable), "unrelated_n": len(unrelated)}
    for name, gate in gates.items():
        out[name] = {"answered_answerable": rate(answerable, gate), "answered_unrelated": rate(unrelated, gate)}
    return out


def second_corpus(cfg: Config, data_dir: Path, n_contexts: int = 60, seed: int = 13,
                  log: Callable[[str], None] = print, skip: int = 0) -> dict:
    """``seed``/``skip`` pick the iapp contexts: sample 13 (the first 60 of its shuffle)
    was looked at when the BM25 alternative was switched off; ``skip=60`` takes the next
    60, a fresh sample nobody looked at."""
    from bench.evaluate import _ctx_id, load_iapp
    from bench.lessons import heldout_documents

    test = load_iapp(data_dir)["test"]
    rng = random.Random(seed)
    by_ctx: dict[str, list[dict]] = {}
    for r in test:
        by_ctx.setdefault(r["context"], []).append(r)
    ctxs = sorted(by_ctx)
    rng.shuffle(ctxs)
    inside = ctxs[skip:skip + n_contexts]
    outside = ctxs[:skip] + ctxs[skip + n_contexts:]
    docs = [Document(doc_id=_ctx_id(c), title=by_ctx[c][0]["title"], body=c, source="iapp")
            for c in inside] + heldout_documents()
    s = build_home(cfg, cfg.home_path / "eval" / f"answers-second-{seed}-{skip}", docs, log)
    answerable = [by_ctx[c][0]["question"] for c in inside]
    answerable += [q["question"] for q in load_jsonl(QUESTIONS) if q["corpus"] == "heldout"]
    unrelated = [by_ctx[c][0]["question"] for c in outside[:len(answerable)]]
    return gate_rates(s, answerable, unrelated, cfg)


def run(cfg: Config, data_dir: Path | None = None, answer: Answerer | None = None,
        log: Callable[[str], None] = print) -> dict:
    from km_search.lessons import LessonStore

    s = build_home(cfg, cfg.home_path / "eval" / "answers", corpus_documents(), log)
    with LessonStore.for_config(s.cfg, sync=True, embedder=s.embedder) as store:
        res = {"questions": run_questions(s, answer or current_answerer(store.get), load_jsonl(QUESTIONS))}
        dev = [q["question"] for q in load_jsonl(QUESTIONS) if q["corpus"] == "seed"]
        dev += [q["question"] for q in load_jsonl(DATA / "seed_questions.jsonl")]
        res["dev_gate"] = gate_rates(s, dev, [q["question"] for q in load_jsonl(UNRELATED)], s.cfg)
    if data_dir is not None and (data_dir / "data.zip").exists():
        res["second_corpus"] = second_corpus(cfg, data_dir, log=log)
        res["second_corpus_fresh"] = second_corpus(cfg, data_dir, log=log, skip=60)
    return res


def format_table(res: dict) -> str:
    q = res["questions"]
    lines = [f"answers: n={q['n']}  gold sentence {q['gold_sentence_rate']:.3f}  right entity "
             f"{q['right_entity_rate']:.3f}  answered {q['found']:.3f}"]
    for c in ("seed", "heldout"):
        if c in q:
            lines.append(f"  {c}: n={q[c]['n']} gold {q[c]['gold_sentence_rate']:.3f} "
                         f"entity {q[c]['right_entity_rate']:.3f}")
    for name in ("dev_gate", "second_corpus", "second_corpus_fresh"):
        if name in res:
            g = res[name]
            lines.append(f"{name}: answerable n={g['answerable_n']} unrelated n={g['unrelated_n']}")
            for gate in ("current", "coverage_or_bm25_3.5", "old_bm25_1.9"):
                lines.append(f"  {gate}: answered answerable {g[gate]['answered_answerable']:.3f}, "
                             f"answered unrelated {g[gate]['answered_unrelated']:.3f}")
    return "\n".join(lines)

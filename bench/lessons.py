"""Precision/recall of lesson-card extraction against the hand-labelled seed set.

    python -m bench.lessons [LABELS.json]

Matching, micro-averaged over documents:
- programmes, agencies, provinces, figures, people (names): an extracted value matches a
  label when one contains the other (spaces and quotes ignored);
- success_factors, recommendations, obstacles: labels are key phrases; recall = phrases
  found in some extracted item, precision = extracted items holding at least one phrase;
- roles: for labelled people that have a role, the extracted role must contain it;
  precision over extracted people with a role who match a labelled person.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from corpus.seeds import bundled_seeds
from km_search.lessons.cards import LessonCard, extract_card
from km_search.models import Document

DEFAULT_LABELS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "lessons_labels.json"
HELDOUT_DIR = Path(__file__).resolve().parents[1] / "km_search" / "data" / "heldout"
VALUE_FIELDS = ("programmes", "agencies", "provinces", "figures")
PHRASE_FIELDS = ("success_factors", "recommendations", "obstacles")
ORDER = (*VALUE_FIELDS[:3], "success_factors", "figures", "people", "roles", "recommendations",
         "obstacles")


def _norm(s: str) -> str:
    return re.sub(r"[\s“”\"'.]", "", s).lower()


def _match(a: str, b: str) -> bool:
    a, b = _norm(a), _norm(b)
    return bool(a and b) and (a in b or b in a)


@dataclass
class PR:
    tp_p: int = 0  # extracted items judged correct
    n_pred: int = 0
    tp_r: int = 0  # labels found
    n_gold: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp_p / self.n_pred if self.n_pred else None

    @property
    def recall(self) -> float | None:
        return self.tp_r / self.n_gold if self.n_gold else None

    def add(self, other: "PR") -> None:
        self.tp_p += other.tp_p; self.n_pred += other.n_pred
        self.tp_r += other.tp_r; self.n_gold += other.n_gold


def _values(pred: list[str], gold: list[str]) -> PR:
    return PR(sum(any(_match(p, g) for g in gold) for p in pred), len(pred),
              sum(any(_match(p, g) for p in pred) for g in gold), len(gold))


def _phrases(items: list[str], phrases: list[str]) -> PR:
    has = [any(_norm(ph) in _norm(it) for ph in phrases) for it in items]
    found = sum(any(_norm(ph) in _norm(it) for it in items) for ph in phrases)
    return PR(sum(has), len(items), found, len(phrases))


def score_card(card: LessonCard, label: dict) -> dict[str, PR]:
    out: dict[str, PR] = {}
    for f in VALUE_FIELDS:
        out[f] = _values([i.text for i in card.items(f)], label.get(f, []))
    for f in PHRASE_FIELDS:
        out[f] = _phrases([i.text for i in card.items(f)], label.get(f, []))
    gold_people = label.get("people", [])
    out["people"] = _values([i.text for i in card.people], [p["name"] for p in gold_people])
    roles = PR()
    pred = {i.text: i.extra.get("role", "") for i in card.people}
    for g in gold_people:
        if g.get("role"):
            roles.n_gold += 1
            roles.tp_r += any(_match(n, g["name"]) and _norm(g["role"]) in _norm(r)
                              for n, r in pred.items())
    for n, r in pred.items():
        g = next((g for g in gold_people if _match(n, g["name"])), None)
        if r and g is not None:
            roles.n_pred += 1
            roles.tp_p += bool(g.get("role")) and _norm(g["role"]) in _norm(r)
    out["roles"] = roles
    return out


def evaluate(cards: Iterable[LessonCard], labels: dict) -> dict[str, PR]:
    total = {f: PR() for f in ORDER}
    for card in cards:
        if card.doc_id not in labels:
            continue
        for f, pr in score_card(card, labels[card.doc_id]).items():
            total[f].add(pr)
    return total


def load_labels(path: Path | str = DEFAULT_LABELS) -> dict:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def evaluate_seeds(path: Path | str = DEFAULT_LABELS) -> dict[str, PR]:
    return evaluate([extract_card(d) for d in bundled_seeds()], load_labels(path))


def heldout_documents(folder: Path = HELDOUT_DIR) -> list[Document]:
    """The report-style documents written for evaluation only (never used to choose a
    rule or constant); doc_id = file name."""
    docs = []
    for f in sorted(folder.glob("*.txt")):
        body = f.read_text(encoding="utf-8")
        title = body.split("\n", 1)[0].strip()
        docs.append(Document(doc_id=f.name, title=title, body=body, url="", provinces=[]))
    return docs


def evaluate_heldout(roles: Any = None, folder: Path = HELDOUT_DIR) -> dict[str, PR]:
    """Lesson fields on the held-out documents, plus their cases: ``cases`` scores the
    case provinces a card splits into, ``case_factors`` the factor phrases found in the
    right case's scoped card."""
    labels = load_labels(folder / "labels.json")
    total = {f: PR() for f in (*PHRASE_FIELDS, "cases", "case_factors")}
    for doc in heldout_documents(folder):
        card, label = extract_card(doc, roles), labels[doc.doc_id]
        for f in PHRASE_FIELDS:
            total[f].add(_phrases([i.text for i in card.items(f)], label.get(f, [])))
        total["cases"].add(_values(card.cases(), label.get("cases", [])))
        for prov, phrases in label.get("case_factors", {}).items():
            items = [i.text for i in card.scoped(prov).success_factors] if prov in card.cases() else []
            pr = _phrases(items, phrases)
            total["case_factors"].add(PR(0, 0, pr.tp_r, pr.n_gold))
    return total


def run_roles(cfg: Any) -> dict:
    """Per-role P/R of the role model on the held-out sentences; lesson fields on the
    held-out documents (with the model, and headings/cues only); the seeds for reference."""
    from km_search.lessons.roles import evaluate_held_out, role_model

    model = role_model(cfg)
    if model is None:
        raise ValueError("the default model could not be loaded: the role model needs it")
    pr = lambda res: {k: {"precision": v.precision, "recall": v.recall, "extracted": v.n_pred,  # noqa: E731
                          "labelled": v.n_gold} for k, v in res.items()}
    return {"held_out_sentences": evaluate_held_out(model),
            "held_out_documents": pr(evaluate_heldout(model)),
            "held_out_documents_no_model": pr(evaluate_heldout(None)),
            "seeds_reference": pr(evaluate([extract_card(d, model) for d in bundled_seeds()], load_labels()))}


def format_roles(res: dict) -> str:
    f = lambda x: "  -  " if x is None else f"{x:.3f}"  # noqa: E731
    out = ["held-out sentences (never trained on):", "| role | precision | recall | predicted | gold |",
           "|---|---|---|---|---|"]
    for role, r in res["held_out_sentences"].items():
        out.append(f"| {role} | {r['precision']:.3f} | {r['recall']:.3f} | {r['predicted']} | {r['gold']} |")
    for name in ("held_out_documents", "held_out_documents_no_model", "seeds_reference"):
        out += ["", name + ":", "| field | precision | recall | extracted | labelled |", "|---|---|---|---|---|"]
        for k, v in res[name].items():
            out.append(f"| {k} | {f(v['precision'])} | {f(v['recall'])} | {v['extracted']} | {v['labelled']} |")
    return "\n".join(out)


def format_table(res: dict[str, PR]) -> str:
    f = lambda x: "  -  " if x is None else f"{x:.3f}"  # noqa: E731
    rows = ["| field | precision | recall | extracted | labelled |", "|---|---|---|---|---|"]
    for name, pr in res.items():
        rows.append(f"| {name} | {f(pr.precision)} | {f(pr.recall)} | {pr.n_pred} | {pr.n_gold} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    res = evaluate_seeds(argv[0] if argv else DEFAULT_LABELS)
    print(format_table(res))
    print("\n5 seed documents, labelled by the extractor's author: a sanity check, not a benchmark.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

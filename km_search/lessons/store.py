"""lessons.db: lesson cards per document, rebuilt from the corpus incrementally.

A card is re-extracted only when its document's content hash or the extractor version
changed; cards of documents gone from the corpus are removed. Facet values are stored in
their own table, so browsing and counting are plain SQL.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from km_search.docstore import DocumentStore
from km_search.models import Document, utcnow
from km_search.sqlite import connect

from . import facets as F
from .cards import EXTRACTOR_VERSION, LessonCard, extract_card
from .roles import role_model

SCHEMA = """
CREATE TABLE IF NOT EXISTS lessons (
    doc_id TEXT PRIMARY KEY, hash TEXT NOT NULL, version INTEGER NOT NULL,
    published TEXT, fiscal_year INTEGER, card TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lesson_facets (
    doc_id TEXT NOT NULL, facet TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (doc_id, facet, value));
CREATE INDEX IF NOT EXISTS lesson_facets_value ON lesson_facets(facet, value);
"""


def lessons_path(cfg: Any) -> Path:
    return cfg.home_path / "lessons.db"


class LessonStore:
    def __init__(self, path: Path | str, roles: Any = None):
        """``roles``: the sentence-role model cards are extracted with (None: headings
        and cue phrases only; :meth:`for_config` passes the home's model)."""
        self.path = Path(path)
        self.roles = roles
        self.db = connect(self.path, SCHEMA)

    @classmethod
    def for_config(cls, cfg: Any, sync: bool = True, embedder: Any = None) -> "LessonStore":
        """The home's lesson store, brought up to date with corpus.db when ``sync``
        (``embedder``: an already loaded default model, for the role model)."""
        store = cls(lessons_path(cfg), roles=role_model(cfg, embedder) if sync else None)
        if sync and Path(cfg.corpus_db).exists():
            store.sync_corpus(cfg.corpus_db)
        return store

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "LessonStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- building --------------------------------------------------------------------------
    def sync(self, docs: Iterable[Document], prune: bool = True) -> dict[str, int]:
        """Bring the cards in line with ``docs``; returns counts of what changed."""
        have = {r[0]: (r[1], r[2]) for r in self.db.execute("SELECT doc_id, hash, version FROM lessons")}
        stats = {"added": 0, "updated": 0, "unchanged": 0, "removed": 0}
        seen: set[str] = set()
        with self.db:
            for doc in docs:
                seen.add(doc.doc_id)
                if have.get(doc.doc_id) == (doc.hash, EXTRACTOR_VERSION):
                    stats["unchanged"] += 1
                    continue
                self._put(extract_card(doc, self.roles))
                stats["updated" if doc.doc_id in have else "added"] += 1
            if prune:
                for doc_id in set(have) - seen:
                    self.db.execute("DELETE FROM lessons WHERE doc_id=?", (doc_id,))
                    self.db.execute("DELETE FROM lesson_facets WHERE doc_id=?", (doc_id,))
                    stats["removed"] += 1
        return stats

    def sync_corpus(self, corpus_db: Path | str) -> dict[str, int]:
        with DocumentStore(corpus_db) as docs:
            return self.sync(docs.iter_documents())

    def _put(self, card: LessonCard) -> None:
        self.db.execute("INSERT OR REPLACE INTO lessons VALUES (?,?,?,?,?,?,?)",
                        (card.doc_id, card.hash, card.version, card.published, card.fiscal_year,
                         json.dumps(card.to_dict(), ensure_ascii=False), utcnow()))
        self.db.execute("DELETE FROM lesson_facets WHERE doc_id=?", (card.doc_id,))
        rows = [(card.doc_id, name, str(v)) for name, values in card.facets.items() for v in values]
        rows += [(card.doc_id, "case_province", i.text) for i in card.provinces]
        self.db.executemany("INSERT OR IGNORE INTO lesson_facets VALUES (?,?,?)", rows)

    # -- reading ---------------------------------------------------------------------------
    def get(self, ref: str) -> LessonCard | None:
        """A card by doc id, or one case of it by "doc_id#province"."""
        doc_id, _, province = ref.partition("#")
        row = self.db.execute("SELECT card FROM lessons WHERE doc_id=?", (doc_id,)).fetchone()
        if row is None:
            return None
        card = LessonCard.from_dict(json.loads(row[0]))
        return card.scoped(province) if province else card

    def facets_of(self, doc_ids: Iterable[str]) -> dict[str, dict[str, list]]:
        """Each carded document's facet values, read from the facet table in two queries
        (no card is parsed: decoding ten cards' JSON was most of a search response's
        facet time). Documents without a card are absent from the result."""
        ids = list(dict.fromkeys(doc_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        out: dict[str, dict[str, list]] = {
            r[0]: {} for r in self.db.execute(f"SELECT doc_id FROM lessons WHERE doc_id IN ({marks})", ids)}
        for doc_id, facet, value in self.db.execute(
                f"SELECT doc_id, facet, value FROM lesson_facets WHERE doc_id IN ({marks}) "
                "AND facet != 'case_province'", ids):  # a browse key, not a card facet
            if doc_id in out:
                out[doc_id].setdefault(facet, []).append(
                    int(value) if facet in F.INT_FACETS and value.isdigit() else value)
        return out

    def doc_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT doc_id FROM lessons ORDER BY published DESC, doc_id")]

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM lessons").fetchone()[0]

    def query(self, province: str | None = None, agency: str | None = None,
              year: int | str | None = None, factor: str | None = None,
              limit: int = 100) -> list[LessonCard]:
        """Lessons by case province, agency (name or abbreviation, department or ministry),
        year (>= 2400: Thai fiscal year B.E.; else calendar year C.E.) and success factor
        (a tag such as "innovation" or Thai words found in a factor sentence)."""
        ids = set(self.doc_ids())
        if province:
            ids &= self._with("case_province", [province.removeprefix("จังหวัด").strip()])
        if agency:
            names = F.agencies_in(agency) or [agency]
            found: set[str] = set()
            for facet in ("agency", "ministry"):
                found |= self._with(facet, names)
            ids &= found
        if year:
            y = int(year)
            ids &= self._with("fiscal_year" if y >= 2400 else "year", [str(y)])
        if factor:
            tagged = self._with("factor", [factor])
            cards = [c for d in ids if (c := self.get(d))]
            ids &= tagged | {c.doc_id for c in cards
                             if any(factor in it.text for it in c.success_factors)}
        ordered = [d for d in self.doc_ids() if d in ids][:limit]
        return [c for d in ordered if (c := self.get(d))]

    def _with(self, facet: str, values: list[str]) -> set[str]:
        marks = ",".join("?" * len(values))
        return {r[0] for r in self.db.execute(
            f"SELECT doc_id FROM lesson_facets WHERE facet=? AND value IN ({marks})", [facet, *values])}

    def facet_counts(self, doc_ids: Iterable[str] | None = None) -> dict[str, dict[Any, int]]:
        """Documents per facet value over ``doc_ids`` (default: every lesson)."""
        ids = list(dict.fromkeys(doc_ids)) if doc_ids is not None else self.doc_ids()
        facets = self.facets_of(ids)
        return F.count_facets(facets[d] for d in ids if d in facets)

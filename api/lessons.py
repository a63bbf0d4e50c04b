"""Lessons-learned endpoints: browse lesson cards, similar cases, comparison handouts.

Cards live in <home>/lessons.db, synced from corpus.db when the app starts and whenever
the service loads a new index build (cards are re-extracted only for changed documents).
"""
from __future__ import annotations

import tempfile
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from km_search.lessons import LessonStore, compare, example_questions, similar_cases

lessons_router = APIRouter(tags=["lessons"])
_sync_lock = threading.Lock()
_handles = threading.local()


def lessons_store(request: Request) -> AbstractContextManager[LessonStore]:
    """This worker thread's store handle (SQLite handles are per thread), synced on index
    change. Handles are kept per thread and build: opening one (connect + schema check)
    cost ~1 ms, a tenth of a BM25 search's time in the server."""
    app = request.app
    build = app.state.service.searcher.build.name if app.state.service.searcher else None
    if getattr(app.state, "lessons_build", object()) != build:
        with _sync_lock:
            with LessonStore.for_config(app.state.service.cfg, sync=True,
                                        embedder=app.state.service.embedder):
                pass
            app.state.lessons_build = build
    key = (id(app), build)
    if getattr(_handles, "key", None) != key:
        _handles.store = LessonStore.for_config(app.state.service.cfg, sync=False)
        _handles.key = key
    return nullcontext(_handles.store)


def _card_summary(c) -> dict:
    return {"ref": c.ref, "doc_id": c.doc_id, "case": c.case_name, "title": c.title, "url": c.url,
            "published": c.published, "fiscal_year": c.fiscal_year,
            "factors": c.facets.get("factor", []),
            "success_factors": [f.text for f in c.success_factors[:5]]}


def _cases(card) -> list[dict]:
    """The cases of a document that tells several (one ref each, "doc_id#province")."""
    return [{"ref": f"{card.doc_id}#{p}", "case": card.scoped(p).case_name} for p in card.cases()]


def _rows(card, province: str | None) -> list[dict]:
    """Listing rows: one per case of a multi-case document (only the asked province's
    when filtering by province), so two cases of one document can be selected and compared."""
    cases = card.cases()
    if not cases:
        return [_card_summary(card)]
    wanted = [p for p in cases if not province or p == province.removeprefix("จังหวัด").strip()]
    return [_card_summary(card.scoped(p)) for p in (wanted or cases)]


@lessons_router.get("/lessons", summary="Browse lesson cards by province, agency, year, factor")
def list_lessons(request: Request, province: str | None = Query(None, max_length=100),
                 agency: str | None = Query(None, max_length=200),
                 year: int | None = Query(None, ge=1900, le=2700,
                                          description="B.E. >= 2400 = Thai fiscal year, else C.E."),
                 factor: str | None = Query(None, max_length=100),
                 limit: int = Query(50, ge=1, le=500)):
    with lessons_store(request) as st:
        cards = st.query(province=province, agency=agency, year=year, factor=factor, limit=limit)
        return {"lessons": [row for c in cards for row in _rows(c, province)],
                "facets": st.facet_counts([c.doc_id for c in cards])}


@lessons_router.get("/examples", summary="Example questions written from the collection's lesson cards")
def examples(request: Request, lang: Literal["th", "en"] = "th",
             n: int = Query(6, ge=1, le=20)) -> dict:
    """Only questions the answer builder really answers are kept; computed once per index
    build and language (each candidate is one search)."""
    from km_search.answer import answer

    svc = request.app.state.service
    searcher = svc.get()
    key = (searcher.build.name, lang, n)
    cache = request.app.state.__dict__.setdefault("examples_cache", {})
    if key not in cache:
        with lessons_store(request) as st:
            cards = [c for d in st.doc_ids() if (c := st.get(d))]
        for old in [k for k in cache if k[0] != key[0]]:  # another build's examples
            del cache[old]
        cache[key] = example_questions(
            cards, lang, n,
            answerable=lambda q: answer(q, [], searcher.search(q, k=5), svc.cfg, False).found)
    return {"lang": lang, "questions": cache[key]}


@lessons_router.get("/lessons/{ref}", summary="One lesson card with cited sentences")
def get_lesson(ref: str, request: Request):
    with lessons_store(request) as st:
        try:
            card = st.get(ref)
        except KeyError as e:
            raise HTTPException(404, str(e).strip("'\"")) from None
        if card is None:
            raise HTTPException(404, f"no lesson '{ref}': use a doc_id from a search hit")
        return {**card.to_dict(), "ref": card.ref, "case": card.case_name, "cases": _cases(card)}


@lessons_router.get("/lessons/{doc_id}/similar", summary="Similar cases (vector neighbours)")
def similar(doc_id: str, request: Request, k: int = Query(5, ge=1, le=20)):
    searcher = request.app.state.service.get()
    with lessons_store(request) as st:
        try:
            return similar_cases(searcher, doc_id, k, store=st)
        except KeyError as e:
            raise HTTPException(404, str(e).strip("'\"")) from None


class CompareIn(BaseModel):
    refs: list[str] = Field(..., min_length=2, max_length=5,
                            description="lesson refs: doc_id or doc_id#province")
    format: str = Field("md", pattern="^(md|docx)$")


@lessons_router.post("/lessons/compare", summary="Side-by-side comparison handout (Markdown/DOCX)")
def compare_lessons(body: CompareIn, request: Request):
    with lessons_store(request) as st:
        try:
            comp = compare.build(body.refs, store=st)
        except (KeyError, ValueError) as e:
            raise HTTPException(422, str(e).strip("'\"")) from None
    if body.format == "docx":
        with tempfile.TemporaryDirectory() as d:
            data = compare.to_docx(comp, Path(d) / "handout.docx").read_bytes()
        return Response(data, media_type="application/vnd.openxmlformats-officedocument."
                        "wordprocessingml.document",
                        headers={"Content-Disposition": 'attachment; filename="lessons-compare.docx"'})
    return PlainTextResponse(compare.to_markdown(comp), media_type="text/markdown; charset=utf-8")

"""The API's routers: search, chat, documents, feedback, export, health/stats."""
from __future__ import annotations

import html
import json
import re
import time
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from pydantic import ValidationError

from km_search.markup import safe_url
from km_search.models import Hit
from km_search.query.rewrite import rewrite
from km_search.query.understand import plan
from km_search.search import clean_query

from km_search import answer as A

from .access import is_admin, rate_limited, require_admin
from .export import date_line, to_docx, to_markdown
from .schemas import (ChatIn, ChatOut, Citation, ExportIn, FeedbackIn, FilterIn, HitOut, Mode,
                      SearchIn, SearchOut, Turn)

search_router = APIRouter(tags=["search"])
chat_router = APIRouter(tags=["chat"])
documents_router = APIRouter(tags=["documents"])
feedback_router = APIRouter(tags=["feedback"])
export_router = APIRouter(tags=["export"])
status_router = APIRouter(tags=["health"])

_DOC_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def _svc(request: Request):
    return request.app.state.service


def public_url(cfg) -> str:
    """Base of absolute links in exports: the configured public URL, never the Host header."""
    return cfg.public_url or f"http://{cfg.serve_host}:{cfg.serve_port}"


def _hit_out(h: Hit) -> HitOut:
    return HitOut(**h.to_dict(), link=A.passage_link(h))


def _facets(request: Request, hits: list[Hit], searcher) -> dict[str, dict[str, int]]:
    """Facet counts (fiscal year, agency, province, region, PMQA, Gov 4.0, factor) of the
    hits: from lesson cards, else from the text facets stored at index time."""
    from km_search.lessons import facet_counts

    from .lessons import lessons_store

    with lessons_store(request) as st:
        counts = facet_counts(hits, store=st,
                              stored=searcher.passage_facets([h.chunk_id for h in hits]))
    return {k: {str(v): n for v, n in vals.items()} for k, vals in counts.items()}


def _hit_json(h: Hit) -> dict:
    """A hit as HitOut's fields, without building the model (see _do_search)."""
    return {**vars(h), "link": A.passage_link(h)}


def _do_search(request: Request, body: SearchIn) -> Response:
    """Search and answer with SearchOut's JSON, serialised here in one step.

    Returning the pydantic model made FastAPI validate and serialise every hit's full
    passage text twice; writing the JSON ourselves (shape declared by ``response_model``,
    checked against SearchOut in tests) saves that on every request.
    """
    t = time.perf_counter()
    searcher = _svc(request).get()
    q = clean_query(body.query, searcher.cfg.max_query_chars)
    qp = plan(q, body.ignore_understood)
    hits = searcher.search(q, k=body.k, mode=body.mode, filters=body.filters.to_filters(),
                           max_per_doc=body.max_per_doc, plan=qp)
    out = {"query": q, "mode": body.mode, "took_ms": 0.0, "hits": [_hit_json(h) for h in hits],
           "facets": _facets(request, hits, searcher), "understood": qp.understood}
    out["took_ms"] = round((time.perf_counter() - t) * 1000, 1)
    return Response(json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode(),
                    media_type="application/json")


@search_router.get("/search", response_model=SearchOut, summary="Search (query string)")
def search_get(request: Request, q: str = Query(..., description="question or keywords"),
               k: int = Query(10, ge=1, le=100), mode: Mode = "hybrid",
               date_from: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$"),
               date_to: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$"),
               publisher: str | None = Query(None, max_length=200),
               province: str | None = Query(None, max_length=100),
               source: str | None = Query(None, max_length=100),
               ignore_understood: list[str] = Query([], max_length=50)) -> Response:
    try:  # the same date checks as the JSON body; a bad date is the client's 422
        filters = FilterIn(date_from=date_from, date_to=date_to, publisher=publisher,
                           province=province, source=source)
    except ValidationError as e:
        raise RequestValidationError([{**err, "loc": ("query", *err["loc"])}
                                      for err in e.errors(include_url=False)]) from None
    return _do_search(request, SearchIn(query=q, k=k, mode=mode, filters=filters,
                                        ignore_understood=ignore_understood))


@search_router.post("/search", response_model=SearchOut, summary="Search (JSON body)")
def search_post(request: Request, body: SearchIn) -> Response:
    return _do_search(request, body)


@chat_router.post("/chat", response_model=ChatOut, summary="Ask a question; cited answer",
                 dependencies=[Depends(rate_limited("chat"))])
def chat(request: Request, body: ChatIn) -> ChatOut:
    """Answer from the best sentences of the top passages (and, for factor, obstacle and
    recommendation questions, the lesson-card items of their documents), one [n] per
    source; or say that no good answer was found, with no result cards. A follow-up
    ("แล้วพังงาล่ะ") is rewritten from the earlier user questions in ``history`` and the
    rewritten query is searched and answered."""
    from .lessons import lessons_store

    t = time.perf_counter()
    svc = _svc(request)
    searcher = svc.get()
    question = clean_query(body.question, searcher.cfg.max_query_chars)
    turns = [Turn(role="user", content=h) if isinstance(h, str) else h for h in body.history]
    rewritten = rewrite(question, [h.content for h in turns if h.role == "user"][-10:])
    asked = clean_query(rewritten, searcher.cfg.max_query_chars) if rewritten else question
    qp = plan(asked, body.ignore_understood)
    with lessons_store(request) as st:
        ans, hits = A.ask(searcher, asked, k=body.k, filters=body.filters.to_filters(),
                          history=[h.model_dump() for h in turns], generate=body.generate,
                          cards=st.get, plan=qp)
    cites = [Citation(n=i, doc_id=h.doc_id, chunk_id=h.chunk_id, title=h.title, url=h.url,
                      link=A.passage_link(h), publisher=h.publisher, published=h.published,
                      published_raw=h.published_raw) for i, h in enumerate(ans.cited, 1)]
    return ChatOut(question=question, answer=ans.text, found=ans.found, mode=ans.mode,
                   note=ans.note, citations=cites, hits=[_hit_out(h) for h in hits[:body.k]],
                   took_ms=round((time.perf_counter() - t) * 1000, 1),
                   facets=_facets(request, hits[:body.k], searcher), understood=qp.understood,
                   rewritten=rewritten)


def _document(request: Request, doc_id: str):
    if not _DOC_ID.match(doc_id):
        raise HTTPException(400, "invalid document id: use the doc_id of a search hit "
                                 "(letters, digits, '-' and '_' only)")
    found = _svc(request).get().document(doc_id)
    if found is None:
        raise HTTPException(404, f"no document {doc_id}")
    doc, spans = found
    return doc, [{"chunk_id": s.pid, "ordinal": s.ordinal, "start": s.start, "end": s.end}
                 for s in spans]


@documents_router.get("/documents/{doc_id}", summary="A whole document (JSON, or HTML for browsers)")
def get_document(request: Request, doc_id: str, passage: int | None = None):
    doc, passages = _document(request, doc_id)
    accept = request.headers.get("accept", "")
    if "text/html" in accept and "application/json" not in accept:
        return HTMLResponse(_document_html(doc, passages, passage))
    return {**doc.to_dict(), "passages": passages}


def _document_html(doc, passages: list[dict], passage: int | None) -> str:
    """Server-rendered, every piece of document text escaped; the cited passage marked."""
    e = html.escape
    body = doc.body
    mark = next((p for p in passages if p["chunk_id"] == passage), None)
    if mark and 0 <= mark["start"] < mark["end"] <= len(body):
        text = (e(body[:mark["start"]]) + '<mark id="passage">' + e(body[mark["start"]:mark["end"]])
                + "</mark>" + e(body[mark["end"]:]))
    else:
        text = e(body)
    meta = " · ".join(x for x in (doc.publisher, date_line(doc.published, doc.published_raw)) if x)
    url = safe_url(doc.url)  # a javascript:/data: URL is shown as text, never a live link
    src = (f'<p><a href="{e(url)}" rel="noopener noreferrer">{e(doc.url)}</a></p>' if url
           else f'<p>{e(doc.url)}</p>' if doc.url else "")
    return (f'<!doctype html><html lang="th"><head><meta charset="utf-8"><title>{e(doc.title)}</title>'
            f'<link rel="stylesheet" href="/static/style.css"></head><body class="docpage">'
            f'<p><a href="/">← km-search</a></p><h1>{e(doc.title)}</h1><p class="meta">{e(meta)}</p>'
            f'{src}<div class="docbody">{text}</div></body></html>')


@feedback_router.post("/feedback", summary="Thumbs up (1) or down (-1) on an answer or a result",
                      dependencies=[Depends(rate_limited("feedback"))])
def feedback(request: Request, body: FeedbackIn) -> dict:
    store = request.app.state.feedback
    fid = store.add(body.query, body.vote, body.target, body.doc_id, body.chunk_id, body.answer)
    return {"id": fid, "counts": store.counts()}


@feedback_router.get("/feedback/judgements.jsonl", response_class=PlainTextResponse,
                     summary="Feedback as relevance judgements (JSON Lines)",
                     dependencies=[Depends(require_admin)])
def judgements(request: Request) -> Response:
    return Response(request.app.state.feedback.judgements_jsonl(),
                    media_type="application/x-ndjson; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="judgements.jsonl"'})


@export_router.post("/export", summary="Conversation and/or results as Markdown or DOCX",
                    dependencies=[Depends(rate_limited("export"))])
def export(request: Request, body: ExportIn) -> Response:
    if not body.conversation and not body.results:
        raise HTTPException(400, "nothing to export: send a conversation or results")
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    base = public_url(_svc(request).cfg)
    if body.format == "md":
        return Response(to_markdown(body, base), media_type="text/markdown; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="km-search-{stamp}.md"'})
    return Response(to_docx(body, base), media_type="application/vnd.openxmlformats-"
                    "officedocument.wordprocessingml.document",
                    headers={"Content-Disposition": f'attachment; filename="km-search-{stamp}.docx"'})


HEALTH_QUERY = "การจัดการความรู้"  # any query: what counts is that both retrievers answer


@status_router.get("/health", summary="Can the index answer a search? (503 with the reason if not)")
def health(request: Request) -> Response:
    """Runs a real one-hit hybrid search (BM25 + the embedding model + FAISS + the passage
    table), so a damaged build, a missing model or a build that failed to load shows here
    as HTTP 503 with the reason, not as "ok" while every search fails."""
    svc = _svc(request)
    body: dict = {"status": "ok"}
    try:
        s = svc.get()
        body["build"] = s.build.name
        s.search(HEALTH_QUERY, k=1, mode="hybrid")
    except Exception as e:
        body.update(status="unavailable", error=str(e) or type(e).__name__)
    else:
        if svc.error:  # a newer build exists but failed to load: serving a stale index
            body.update(status="degraded", error=svc.error)
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/json",
                    status_code=200 if body["status"] == "ok" else 503,
                    headers={"Cache-Control": "no-store"})


@status_router.get("/stats", summary="Documents, passages, index age, model, feedback, and what "
                                   "the collection holds (publishers, provinces, date range)")
def stats(request: Request) -> dict:
    svc = _svc(request)
    s = svc.get()
    man = s.stats()
    created = man.get("created_at")
    age = None
    try:
        age = round(time.time() - datetime.fromisoformat(created).replace(
            tzinfo=datetime.fromisoformat(created).tzinfo or timezone.utc).timestamp())
    except (TypeError, ValueError):
        pass
    return {"documents": man["counts"]["documents"], "passages": man["counts"]["passages"],
            "build": man["build"], "index_created_at": created, "index_age_seconds": age,
            "loaded_at": datetime.fromtimestamp(svc.loaded_at, timezone.utc).isoformat()
            if svc.loaded_at else None,
            "model": man["model"]["name"], "dim": man["model"]["dim"],
            "answers": {"min_bm25": svc.cfg.answer_min_bm25, "min_coverage": svc.cfg.answer_min_coverage,
                        "generative": bool(svc.cfg.llm_url)},
            **({"feedback": request.app.state.feedback.counts(),
                "query_cache": s.query_vectors.stats()} if is_admin(request) else {}),
            "collection": s.overview().to_dict()}


@status_router.get("/filters", summary="Values for the filter controls")
def filters(request: Request) -> dict:
    ov = _svc(request).get().overview()
    return {"publishers": sorted(p["name"] for p in ov.publishers),
            "provinces": sorted(p["name"] for p in ov.provinces), "sources": ov.sources,
            "date_min": ov.date_min, "date_max": ov.date_max}

"""App factory: ``create_app(cfg)`` loads the index once and mounts routers and the page."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from km_search import __version__
from km_search.embed import Embedder
from km_search.indexdir import IndexError_
from km_search.search import QueryError
from km_search.settings import Config

from .feedback import FeedbackStore
from .lessons import lessons_router
from .routes import (chat_router, documents_router, export_router, feedback_router,
                     search_router, status_router)
from .service import IndexUnavailable, SearchService

STATIC = Path(__file__).parent / "static"
MAX_BODY = 1 << 20  # 1 MiB: a question is at most a few KB; an export a few hundred
log = logging.getLogger("km_search.api")

_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (declared or streamed) with 413."""

    def __init__(self, app, limit: int = MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = JSONResponse({"detail": f"request too large (limit {self.limit // 1024} KB): "
                                          "ask a shorter question"}, status_code=413)
        for k, v in scope.get("headers", []):
            if k == b"content-length" and v.isdigit() and int(v) > self.limit:
                return await too_big(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _TooBig()
            return msg
        started = False

        async def tracking_send(msg):
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)
        try:
            await self.app(scope, limited, tracking_send)
        except _TooBig:
            if not started:
                await too_big(scope, receive, send)


class _TooBig(Exception):
    pass


class SecurityHeaders:
    """nosniff, no-referrer and the CSP (not on the /docs pages, which load their own
    scripts) on every response. Plain ASGI: Starlette's ``@app.middleware("http")`` pipes
    each body through a memory stream, which cost ~1 ms per /search."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        if not scope["path"].startswith(("/docs", "/redoc", "/static-offline-docs")):
            extra.append((b"content-security-policy", _CSP.encode()))

        async def with_headers(msg):
            if msg["type"] == "http.response.start":
                have = {k.lower() for k, _ in msg.get("headers", [])}
                msg["headers"] = list(msg.get("headers", [])) + [h for h in extra if h[0] not in have]
            await send(msg)
        await self.app(scope, receive, with_headers)


def create_app(cfg: Config, embedder: Embedder | None = None, warm: bool = False) -> FastAPI:
    """The API over ``cfg``'s home. ``warm`` loads the embedding model at start-up."""
    service = SearchService(cfg, embedder)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm:
            service.warm()
        yield

    # Swagger UI and ReDoc from the fastapi-offline wheel's own copies (not a CDN), so
    # /docs and /redoc work on a machine without internet.
    app = FastAPIOffline(title="km-search", version=__version__, lifespan=lifespan,
                  description="Thai knowledge-management search: hybrid BM25 + dense retrieval, "
                              "cited extractive answers, feedback and export.")
    app.state.service = service
    app.state.feedback = FeedbackStore(cfg.home_path / "feedback.db")
    for r in (search_router, chat_router, documents_router, feedback_router, export_router,
              status_router, lessons_router):
        app.include_router(r)

    @app.exception_handler(QueryError)
    async def _query_error(request: Request, exc: QueryError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(IndexUnavailable)
    @app.exception_handler(IndexError_)
    async def _index_error(request: Request, exc: Exception):
        return JSONResponse({"detail": f"search is unavailable: {exc}"}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        msg = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}"
                        for e in errs[:5])
        clean = [{k: e.get(k) for k in ("loc", "msg", "type")} for e in errs[:20]]
        return JSONResponse({"detail": f"invalid request: {msg}", "errors": clean},
                            status_code=422)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"detail": "internal error; the service is still running"},
                            status_code=500)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)
    return app

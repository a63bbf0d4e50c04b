"""App factory: ``create_app(cfg)`` loads the index once and mounts routers and the page."""
from __future__ import annotations

import json
import logging
import re
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

from .access import RateLimits
from km_search.feedback import FeedbackStore
from .lessons import lessons_router
from .routes import (chat_router, documents_router, export_router, feedback_router,
                     search_router, status_router)
from .service import IndexUnavailable, SearchService

STATIC = Path(__file__).parent / "static"
MAX_BODY = 1 << 20  # 1 MiB: a question is at most a few KB; an export a few hundred
log = logging.getLogger("km_search.api")

_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


# per process: ~4 x 25 ms a hybrid search = <= ~100 ms queued. 2 served an overloaded 2-core,
# 2-worker host better (50 clients, first-time questions, idle 2026-12-03: seed 56.7 -> 63.3
# req/s, p99 229 -> 102 ms; README "Query-vector cache, first-time questions"), but one page
# load or 3-4 polite clients on one process then already get 503s (the browser and chaos
# tests did), so 2 is a setting for such hosts, not the default.
DEFAULT_INFLIGHT = 4
MAX_HEADERS = 16 * 1024  # all request headers together; browsers send 1-2 KB
_LONE_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _json_error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _without_lone_surrogates(body: bytes) -> bytes:
    """A JSON body with ``\\ud800``-style escapes re-serialised with lone surrogates as
    U+FFFD, so no handler meets a string that cannot be encoded (SQLite, the Thai
    segmenter and JSON responses all raise on them). Pairs are kept; rare, so the fast
    path is one regex search of the raw bytes."""
    if not _LONE_SURROGATE_ESCAPE.search(body):
        return body
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body  # FastAPI answers the malformed JSON with its own 4xx
    text = json.dumps(data, ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode("utf-8")


class RequestGuard:
    """The HTTP edge: header and body limits, lone-surrogate cleanup, crash isolation.

    - headers over ``max_headers`` bytes: 431;
    - bodies over ``limit`` bytes: 413, whether declared (Content-Length) or streamed
      (chunked). The body is read here, before the app: when FastAPI reads it, an error
      in the middle of the stream becomes its generic 400 "error parsing the body";
    - an exception escaping a handler: a JSON 500 written here, so the server keeps the
      connection (Starlette re-raises after its own 500 page, and uvicorn then closes a
      keep-alive connection that the client's next request was going to use).
    """

    def __init__(self, app, limit: int = MAX_BODY, max_headers: int = MAX_HEADERS):
        self.app, self.limit, self.max_headers = app, limit, max_headers

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope.get("headers", [])
        if sum(len(k) + len(v) + 4 for k, v in headers) > self.max_headers:
            return await _json_error(431, f"request headers too large (limit "
                                          f"{self.max_headers // 1024} KB)")(scope, receive, send)
        too_big = _json_error(413, f"request too large (limit {self.limit // 1024} KB): "
                                   "ask a shorter question")
        for k, v in headers:
            if k == b"content-length" and (not v.isdigit() or int(v) > self.limit):
                return await too_big(scope, receive, send)
        if scope["method"] in ("POST", "PUT", "PATCH"):
            chunks, seen, more = [], 0, True
            while more:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return
                chunks.append(msg.get("body", b""))
                seen += len(chunks[-1])
                if seen > self.limit:
                    return await too_big(scope, receive, send)
                more = msg.get("more_body", False)
            body = b"".join(chunks)
            ctype = dict(headers).get(b"content-type", b"")
            if b"json" in ctype:
                body = _without_lone_surrogates(body)
            sent = False

            async def replay():
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()
            receive = replay
        started = False

        async def tracking_send(msg):
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)
        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s", scope.get("path"))
            if started:
                raise
            await _json_error(500, "internal error; the service is still running")(
                scope, receive, send)


class InflightLimit:
    """A bounded queue: at most ``limit`` API requests at once in this process (running or
    waiting for a worker thread); the next gets 503 + Retry-After at once. Under overload
    clients then retry or back off, instead of every request waiting seconds in an
    unbounded queue (the issue's 50-client run: p99 2.95 s). /health, the page and its
    static files are not counted, so a saturated server still says it is alive."""

    EXEMPT = ("/health", "/static", "/docs", "/redoc", "/openapi.json")

    def __init__(self, app, limit: int):
        self.app, self.limit, self.inflight = app, limit, 0

    async def __call__(self, scope, receive, send):
        if (scope["type"] != "http" or self.limit <= 0 or scope["path"] == "/"
                or scope["path"].startswith(self.EXEMPT)):
            return await self.app(scope, receive, send)
        if self.inflight >= self.limit:
            return await _json_error(503, "server busy: too many requests in progress; "
                                          "retry in a second", {"Retry-After": "1"})(
                scope, receive, send)
        self.inflight += 1  # one event loop per process: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1


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
    app.state.feedback = FeedbackStore(cfg.home_path / "feedback.db",
                                       int(cfg.feedback_max_mb * 1024 * 1024))
    app.state.rate_limits = RateLimits(cfg)
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

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    app.add_middleware(RequestGuard)
    app.add_middleware(InflightLimit, limit=cfg.max_inflight or DEFAULT_INFLIGHT)
    app.add_middleware(SecurityHeaders)
    return app


def app_from_env() -> FastAPI:
    """The app for ``km-search serve --workers N``: each worker process builds its own from
    the KM_SEARCH_* environment (the serve command exports its options there first)."""
    from km_search.settings import load_config

    return create_app(load_config(), warm=True)

"""Who may call what: per-client rate limits and the admin token.

Rate limits use the ``limits`` library (the engine slowapi is built on) directly: a
FastAPI dependency per limited route reads its rule from the settings of the app it runs
in (slowapi's decorators bind one limiter and its rules at import time, but every app
here, and every test, carries its own settings). Counts are kept in memory per server
process: with ``--workers N`` a client can make up to N times the limit, still bounded.
The client is the TCP peer address; X-Forwarded-For is not trusted (a client could
choose it), so behind a reverse proxy set the limits on the proxy instead.
"""
from __future__ import annotations

import hmac
import time

from fastapi import HTTPException, Request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
OFF = {"", "0", "off", "none"}  # a rate_* value that turns its limit off


class RateLimits:
    """The configured rules (``rate_<name>`` settings) and one in-memory moving window."""

    def __init__(self, cfg):
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._rules: dict[str, list[RateLimitItem]] = {}
        for name in ("feedback", "chat", "export"):
            spec = (getattr(cfg, f"rate_{name}", "") or "").strip()
            self._rules[name] = [] if spec.lower() in OFF else parse_many(spec)

    def hit(self, name: str, client: str) -> None:
        """Count one request; raise 429 with Retry-After when a rule is exhausted."""
        for rule in self._rules.get(name, []):
            if not self._limiter.hit(rule, name, client):
                reset = self._limiter.get_window_stats(rule, name, client).reset_time
                wait = max(1, int(reset - time.time() + 0.999))
                raise HTTPException(429, f"too many {name} requests from this address (limit "
                                         f"{rule}); try again in {wait} s",
                                    headers={"Retry-After": str(wait)})


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def rate_limited(name: str):
    """A dependency that counts the request against the ``rate_<name>`` rule."""
    def check(request: Request) -> None:
        request.app.state.rate_limits.hit(name, client_of(request))
    return check


def require_admin(request: Request) -> None:
    """Admin endpoints: ``Authorization: Bearer <admin_token>``; with no token configured,
    only clients on this machine (loopback) are admitted."""
    if not is_admin(request):
        if request.app.state.service.cfg.admin_token:
            raise HTTPException(401, "admin endpoint: send Authorization: Bearer <admin_token>",
                                headers={"WWW-Authenticate": "Bearer"})
        raise HTTPException(403, "admin endpoint: set KM_SEARCH_ADMIN_TOKEN and send it as a "
                                 "Bearer token, or call from this machine")


def is_admin(request: Request) -> bool:
    token = request.app.state.service.cfg.admin_token
    if not token:
        return client_of(request) in LOOPBACK
    got = request.headers.get("authorization", "")
    scheme, _, value = got.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                              str(token).encode())

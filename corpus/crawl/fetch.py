"""Polite HTTP fetching: robots.txt, per-host rate limit, retries, size limits,
redirects kept inside the source's allowed hosts, and conditional requests."""
from __future__ import annotations

import time
import urllib.robotparser
from email.utils import parsedate_to_datetime
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urljoin, urlsplit

import httpx

from .config import Source, Sources

RETRY_STATUS = {429, 500, 502, 503, 504}


class FetchError(Exception):
    """A URL that could not be fetched; the message is the reason recorded."""

    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason)
        self.status = status


@dataclass
class Response:
    url: str  # final URL after (allowed) redirects
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").lower()


def retry_after(value: str, cap: float = 60.0) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), capped."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), cap)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    from datetime import datetime, timezone

    return max(0.0, min(cap, (when - datetime.now(timezone.utc)).total_seconds()))


class Fetcher:
    def __init__(self, sources: Sources, client: httpx.Client | None = None):
        self.sources = sources
        self.client = client or httpx.Client(follow_redirects=False, http2=False)
        self._robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self._last: dict[str, float] = {}
        self.requests = 0  # HTTP requests sent (robots.txt included)
        self.retry_waits: list[float] = []  # seconds waited on Retry-After answers
        self.sent: dict[str, list[float]] = {}  # host -> monotonic start of each request

    def close(self) -> None:
        self.client.close()

    # politeness -------------------------------------------------------------
    def _wait(self, host: str, source: Source) -> None:
        delay = self.sources.delay_for(host, source)
        if delay > 0 and host in self._last:
            pause = self._last[host] + delay - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        self._last[host] = time.monotonic()
        self.sent.setdefault(host, []).append(self._last[host])

    def robots_allows(self, url: str, source: Source) -> bool:
        if not source.respect_robots:
            return True
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        rp = self._robots.get(key)
        if rp is None:
            rp = urllib.robotparser.RobotFileParser(key + "/robots.txt")
            try:
                self._wait(parts.netloc, source)
                self.requests += 1
                r = self.client.get(key + "/robots.txt", timeout=source.timeout,
                                    headers={"User-Agent": source.user_agent})
                if r.status_code >= 500:
                    rp.disallow_all = True  # RFC 9309: unreachable robots.txt means "disallow"
                elif r.status_code >= 400:
                    rp.allow_all = True
                else:
                    rp.parse(r.text.splitlines())
            except httpx.HTTPError:
                rp.disallow_all = True
            self._robots[key] = rp
        return rp.can_fetch(source.user_agent, url)

    def sitemaps(self, url: str, source: Source) -> list[str]:
        """Sitemap URLs robots.txt lists for ``url``'s site (robots.txt is fetched once)."""
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        if key not in self._robots:
            saved = source.respect_robots
            source.respect_robots = True  # read the file even when its rules are ignored
            try:
                self.robots_allows(url, source)
            finally:
                source.respect_robots = saved
        return list(self._robots[key].site_maps() or [])

    # fetching -----------------------------------------------------------------
    def fetch(self, url: str, source: Source, *, etag: str | None = None,
              last_modified: str | None = None,
              scope: Callable[[str], bool] | None = None) -> Response:
        """GET ``url`` (following redirects ``scope`` allows, by default the source's
        hosts and paths); raises FetchError with a reason."""
        allowed = scope or source.allowed
        seen = {url}
        for _ in range(source.max_redirects + 1):
            if not allowed(url):
                raise FetchError(f"outside the source's allowed hosts/paths: {url}")
            if not self.robots_allows(url, source):
                raise FetchError(f"forbidden by robots.txt: {url}")
            r = self._get_with_retries(url, source, etag, last_modified)
            if r.status in (301, 302, 303, 307, 308):
                loc = r.headers.get("location")
                if not loc:
                    raise FetchError(f"redirect without Location ({r.status})", r.status)
                nxt = urljoin(url, loc)
                if nxt in seen:
                    raise FetchError(f"redirect loop at {nxt}", r.status)
                if not allowed(nxt):
                    raise FetchError(f"redirect to a disallowed URL: {nxt}", r.status)
                seen.add(nxt)
                url = nxt
                continue
            return r
        raise FetchError(f"too many redirects (more than {source.max_redirects})")

    def _get_with_retries(self, url: str, source: Source, etag: str | None,
                          last_modified: str | None) -> Response:
        headers = {"User-Agent": source.user_agent,
                   "Accept": "text/html,application/xhtml+xml,application/pdf,*/*;q=0.8",
                   "Accept-Language": "th,en;q=0.8"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        host = urlsplit(url).netloc
        last_reason = ""
        for attempt in range(source.retries + 1):
            if attempt:
                time.sleep(min(60.0, source.backoff * 2 ** (attempt - 1)))
            self._wait(host, source)
            self.requests += 1
            try:
                r = self._stream(url, headers, source)
            except httpx.TimeoutException:
                last_reason = "timed out"
                continue
            except httpx.TransportError as e:
                last_reason = f"connection error ({type(e).__name__})"
                continue
            if r.status in RETRY_STATUS:
                last_reason = f"HTTP {r.status}"
                wait = retry_after(r.headers.get("retry-after", ""))
                if wait is not None and attempt < source.retries:
                    self.retry_waits.append(wait)
                    time.sleep(wait)
                continue
            return r
        raise FetchError(f"{last_reason} after {source.retries + 1} attempts",
                         int(last_reason[5:]) if last_reason.startswith("HTTP ") else None)

    def _stream(self, url: str, headers: dict, source: Source) -> Response:
        with self.client.stream("GET", url, headers=headers, timeout=source.timeout) as r:
            hdrs = {k.lower(): v for k, v in r.headers.items()}
            if r.status_code != 200:
                return Response(url, r.status_code, hdrs, b"")
            length = hdrs.get("content-length", "")
            if length.isdigit() and int(length) > source.max_bytes:
                raise FetchError(f"too large ({int(length)} bytes > {source.max_bytes})", 200)
            buf = bytearray()
            for chunk in r.iter_bytes():
                buf += chunk
                if len(buf) > source.max_bytes:
                    raise FetchError(f"too large (over {source.max_bytes} bytes)", 200)
            return Response(url, 200, hdrs, bytes(buf))

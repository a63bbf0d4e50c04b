"""A local fixture web server for the crawler tests (127.0.0.1 only, threaded).

Serves tests/fixtures/sites with ETag/Last-Modified and 304s, plus dynamic pages: a
500-then-200 page, an off-site redirect, a huge page, a redirect loop and endless
pagination. Every request is logged as (host, path, status).
"""
from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SITES = Path(__file__).resolve().parent / "fixtures" / "sites"
LAST_MODIFIED = "Wed, 08 Dec 2021 10:00:00 GMT"
TYPES = {".html": "text/html; charset=utf-8", ".pdf": "application/pdf", ".txt": "text/plain",
         ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}


class Server:
    def __init__(self):
        self.log: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        self.hits: dict[str, int] = {}
        self.overrides: dict[str, bytes] = {}  # path -> body, to simulate changed pages
        self.gone: set[str] = set()  # paths answering 404
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, client_address: None  # client aborts (huge page)
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def clear(self):
        with self.lock:
            self.log.clear()

    def paths(self, status: int | None = None) -> list[str]:
        with self.lock:
            return [p for h, p, s in self.log if status is None or s == status]

    def _send(self, h, status: int, body: bytes = b"", ctype: str = "text/html; charset=utf-8",
              headers: dict | None = None):
        with self.lock:
            self.log.append((h.headers.get("Host", ""), h.path, status))
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        if status != 304:
            h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if body and status != 304:
            h.wfile.write(body)

    def _handle(self, h):
        path = h.path.split("?")[0]
        with self.lock:
            n = self.hits[path] = self.hits.get(path, 0) + 1
        if path == "/opdc/news/flaky.html" and n == 1:
            return self._send(h, 500, b"oops")
        if path == "/offsite-redirect":
            return self._send(h, 302, headers={"Location": f"http://localhost:{self.port}/opdc/news/a0.html"})
        if path.startswith("/loop/"):
            nxt = "/loop/b" if path == "/loop/a" else "/loop/a"
            return self._send(h, 302, headers={"Location": nxt})
        if path == "/huge.html":
            return self._send(h, 200, b"<html><body><p>" + "ก".encode() * 700_000 + b"</p></body></html>")
        if path.startswith("/endless/"):
            k = int(path.rsplit("/", 1)[1] or 0)
            body = (f'<html><body><ul class="news"></ul><div class="pagination">'
                    f'<a class="next" href="/endless/{k + 1}">next</a></div></body></html>').encode()
            return self._conditional(h, body, "text/html; charset=utf-8")
        if path in self.gone:
            return self._send(h, 404, b"gone")
        body = self.overrides.get(path)
        f = (SITES / path.lstrip("/")).resolve()
        if body is None:
            if not str(f).startswith(str(SITES)) or not f.is_file():
                return self._send(h, 404, b"not found")
            body = f.read_bytes()
        ctype = TYPES.get(f.suffix, "application/octet-stream")
        if f.name == "tis620.html":
            ctype = "text/html"  # charset only in <meta>
        if f.suffix == ".html":
            body = body.replace(b"{{PORT}}", str(self.port).encode())
        self._conditional(h, body, ctype)

    def _conditional(self, h, body: bytes, ctype: str):
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        hdrs = {"ETag": etag, "Last-Modified": LAST_MODIFIED}
        if h.headers.get("If-None-Match") == etag:
            return self._send(h, 304, headers=hdrs)
        self._send(h, 200, body, ctype, hdrs)


def sources_toml(base: str, delay: float = 0.0) -> str:
    host = base.split("//", 1)[1]
    return f'''
[defaults]
delay = {delay}
retries = 2
backoff = 0.0
timeout = 5.0
max_bytes = 1000000
max_list_pages = 4
max_pages = 200
allowed_hosts = ["{host}"]
title = "h1.title"
body = "div.entry-content"
date = "span.date"
article_links = "ul.news a"
next_page = ".pagination a.next"

[rate_limits]
"{host}" = {delay}

[sources.opdc]
type = "opdc"
publisher = "สำนักงาน ก.พ.ร."
start_urls = ["{base}/opdc/news/index.html"]

[sources.agency]
type = "agency"
publisher = "กรมการพัฒนาชุมชน"
start_urls = ["{base}/agency/reports.html"]
article_links = "ul.news a"
'''

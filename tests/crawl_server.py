"""Local fixture web servers for the crawler tests (127.0.0.1, a free port, threaded).

``Server("wp")`` serves tests/fixtures/sites/wp at its root, the way a real agency site
answers: ETag/Last-Modified and 304s; ``/a/b?x=1`` from ``a/b@x=1.html`` (else ``a/b.html``,
``a/b/index.html``; unknown query parameters such as utm_* are ignored, as real servers
do); ``/download.php?file=NAME`` from ``files/NAME`` as octet-stream with a
Content-Disposition; ``{{PORT}}`` and ``{{TODAY_TH}}`` (today's date the way a Thai header
clock shows it) filled in. The ``traps`` site adds dynamic pages: a 500-then-200 page, a
429-with-Retry-After page, an off-site redirect, a huge page, a redirect loop and endless
pagination. Every request is logged as (host, path with query, status).
"""
from __future__ import annotations

import hashlib
import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

SITES = Path(__file__).resolve().parent / "fixtures" / "sites"
LAST_MODIFIED = "Wed, 08 Dec 2021 10:00:00 GMT"
TYPES = {".html": "text/html; charset=utf-8", ".pdf": "application/pdf", ".txt": "text/plain",
         ".xml": "application/xml",
         ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
_TH_MONTHS = ["มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน", "กรกฎาคม",
              "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม"]
_TH_DAYS = ["จันทร์", "อังคาร", "พุธ", "พฤหัสบดี", "ศุกร์", "เสาร์", "อาทิตย์"]


def today_th(d: date | None = None) -> str:
    """'วันพฤหัสบดีที่ 3 ธันวาคม พ.ศ. 2569': what a header clock on a Thai site shows."""
    d = d or date.today()
    return f"วัน{_TH_DAYS[d.weekday()]}ที่ {d.day} {_TH_MONTHS[d.month - 1]} พ.ศ. {d.year + 543}"


def answers(site: str) -> dict:
    return json.loads((SITES / site / "answers.json").read_text(encoding="utf-8"))


class Server:
    def __init__(self, site: str = "traps"):
        self.site = site
        self.root = SITES / site
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
        self.host = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def clear(self):
        """Forget the request log and the hit counts (the 500/429 pages fail once again)."""
        with self.lock:
            self.log.clear()
            self.hits.clear()

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

    def _file(self, path: str, query: str) -> Path | None:
        rel = path.lstrip("/")
        cands = []
        if query:
            cands.append(f"{rel}@{query}.html")
        if not rel or rel.endswith("/"):
            cands.append(rel + "index.html")
        else:
            cands += [rel, rel + ".html", rel + "/index.html"]
        for c in cands:
            f = (self.root / c).resolve()
            if str(f).startswith(str(self.root)) and f.is_file():
                return f
        return None

    def _handle(self, h):
        parts = urlsplit(h.path)
        path = unquote(parts.path)  # /files/%E0%B8%...pdf names a file with a Thai name
        with self.lock:
            n = self.hits[path] = self.hits.get(path, 0) + 1
        if self.site == "traps":
            if path == "/news/flaky.html" and n == 1:
                return self._send(h, 500, b"oops")
            if path == "/news/busy.html" and n == 1:
                return self._send(h, 429, b"slow down", headers={"Retry-After": "1"})
            if path == "/offsite-redirect":
                return self._send(h, 302, headers={"Location": f"http://localhost:{self.port}/news/flaky.html"})
            if path.startswith("/loop/"):
                return self._send(h, 302, headers={"Location": "/loop/b" if path == "/loop/a" else "/loop/a"})
            if path == "/huge.html":
                return self._send(h, 200, b"<html><body><p>" + "ก".encode() * 700_000 + b"</p></body></html>")
            if path.startswith("/endless/"):
                k = int(path.rsplit("/", 1)[1] or 0)
                body = (f'<html><body><main><ul class="news"></ul><div class="pagination">'
                        f'<a class="next" href="/endless/{k + 1}">ถัดไป</a></div></main></body></html>').encode()
                return self._conditional(h, body, "text/html; charset=utf-8")
        if path in self.gone:
            return self._send(h, 404, b"gone")
        headers = {}
        if path == "/download.php":
            name = dict(parse_qsl(parts.query)).get("file", "")
            f = self._file("/files/" + name, "") if name and "/" not in name else None
            if f is None:
                return self._send(h, 404, b"not found")
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
            return self._conditional(h, f.read_bytes(), "application/octet-stream", headers)
        body = self.overrides.get(path)
        f = self._file(path, parts.query)
        if body is None:
            if f is None:
                return self._send(h, 404, b"not found")
            body = f.read_bytes()
        suffix = f.suffix if f is not None else ".html"
        ctype = TYPES.get(suffix, "application/octet-stream")
        if suffix in (".html", ".xml", ".txt") or f is None:
            enc = "cp874" if self.site == "oldtable" and suffix == ".html" else "utf-8"
            body = body.replace(b"{{PORT}}", str(self.port).encode()).replace(
                b"{{TODAY_TH}}", today_th().encode(enc))
            if enc == "cp874":
                ctype = "text/html"  # charset only in <meta>, as old servers send it
        if f is not None and f.name == "robots.txt":
            ctype = "text/plain"
        self._conditional(h, body, ctype, headers)

    def _conditional(self, h, body: bytes, ctype: str, extra: dict | None = None):
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        hdrs = {"ETag": etag, "Last-Modified": LAST_MODIFIED, **(extra or {})}
        if h.headers.get("If-None-Match") == etag:
            return self._send(h, 304, headers=hdrs)
        self._send(h, 200, body, ctype, hdrs)


def sources_toml(servers: dict[str, Server], delay: float = 0.0, *, selectors: bool = False) -> str:
    """A sources file for the fixture sites: zero-config (start URL only), or with the
    selectors a user would write after reading the pages (``selectors=True``)."""
    out = [f'''[defaults]
delay = {delay}
retries = 2
backoff = 0.0
timeout = 5.0
max_bytes = 1000000
max_list_pages = 4
max_pages = 200
''', "[rate_limits]"]
    out += [f'"{s.host}" = {delay}' for s in servers.values()]
    starts = {"wp": "/", "joomla": "/", "oldtable": "/", "traps": "/", "heldout": "/"}
    extra = {
        "wp": 'title = "h1.elementor-heading-title, h2.elementor-heading-title"\n'
              'body = ".elementor-widget-theme-post-content"\ndate = ".elementor-widget-post-info"\n',
        "joomla": 'title = "[itemprop=headline]"\nbody = "[itemprop=articleBody]"\ndate = ".article-info"\n',
        "oldtable": 'title = "font[size=\'4\'] b"\ndate = "font[size=\'2\']"\n',
    }
    for name, s in servers.items():
        if name not in starts:
            continue
        out.append(f'\n[sources.{name}]\ntype = "agency"\nstart_urls = ["{s.base}{starts[name]}"]\n'
                   + (extra.get(name, "") if selectors else ""))
    return "\n".join(out) + "\n"

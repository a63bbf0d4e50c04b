"""No 5xx from input, escaped outputs, http(s)-only links, and the HTTP edge's limits.

The real app on a copy of the seed index (TestClient), plus one real uvicorn server on a
free 127.0.0.1 port for what only a socket shows (keep-alive after a 500).
"""
from __future__ import annotations

import http.client
import io
import shutil
import socket
import threading
import time

import pytest
from fastapi.testclient import TestClient

from tests.conftest import fake_config

KK = "6fcee9b62a8409b7"  # seed 000: ขอนแก่นศึกษา


@pytest.fixture(scope="module")
def hard_home(fake_seed_home, tmp_path_factory):
    dst = tmp_path_factory.mktemp("hardhome") / "home"
    shutil.copytree(fake_seed_home, dst, symlinks=True)
    return dst


@pytest.fixture(scope="module")
def client(hard_home, fake_embedder):
    from api import create_app

    cfg = fake_config(hard_home, public_url="https://km.example.go.th", rate_feedback="off",
                      rate_chat="off", rate_export="off")
    with TestClient(create_app(cfg, fake_embedder)) as c:
        yield c


def _ok_or_4xx(r):
    assert r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith(("application/json", "text/", "application/vnd"))


# -- 5xx from input ------------------------------------------------------------------
@pytest.mark.parametrize("path,raw", [
    ("/search", b'{"query": "\\u0e01\\u0e32\\u0e23\\ud800\\u0e08\\u0e31\\u0e14\\u0e01\\u0e32\\u0e23"}'),
    ("/search", b'{"query": "\\udfff"}'),
    ("/chat", b'{"question": "\\u0e02\\u0e2d\\u0e19\\u0e41\\u0e01\\u0e48\\u0e19 \\ud800 KM"}'),
    ("/feedback", b'{"query": "q \\ud800", "vote": 1, "target": "answer"}'),
])
def test_lone_surrogates_in_json_are_not_a_server_error(client, path, raw):
    r = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert r.status_code in (200, 400), r.text
    if path == "/search" and r.status_code == 200:
        assert "\ufffd" in r.json()["query"] or r.json()["query"] == "\ufffd"


def test_feedback_chunk_id_out_of_range_is_422(client):
    r = client.post("/feedback", json={"query": "x", "vote": 1, "target": "result",
                                       "chunk_id": 2 ** 63})
    assert r.status_code == 422 and "chunk_id" in r.json()["detail"]


def test_docx_export_with_control_characters(client):
    import docx

    body = {"format": "docx", "title": "ชื่อ\x00\x01", "conversation": [
        {"question": "คำถาม\x0b\x1f?", "answer": "คำตอบ\x00 [1]", "citations": [
            {"n": 1, "title": "เอกสาร\x07", "link": "javascript:alert(1)"}]}],
        "results": [{"title": "ผล\x1b[31m", "snippet": "ตัด\x00ตอน", "link": "/documents/x"}]}
    r = client.post("/export", json=body)
    assert r.status_code == 200, r.text
    text = "\n".join(p.text for p in docx.Document(io.BytesIO(r.content)).paragraphs)
    assert "คำตอบ [1]" in text and "javascript:" not in text
    assert "https://km.example.go.th/documents/x" in text


@pytest.mark.parametrize("chunked", [True, False])
def test_ten_megabyte_body_is_413_however_sent(client, chunked):
    def gen():
        for _ in range(10):
            yield b"x" * (1 << 20)
    content = gen() if chunked else b"x" * (10 << 20)
    r = client.post("/chat", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["detail"]


def test_oversized_headers_are_431(client):
    r = client.get("/health", headers={"x-filler": "a" * 20_000})
    assert r.status_code == 431 and "headers too large" in r.json()["detail"]
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("value,words", [("2020-13-45", "not a calendar date"),
                                         ("2021-02-30", "not a calendar date"),
                                         ("2564-01-01", "Buddhist Era"),
                                         ("2020-1-1", "date_from")])
def test_nonsense_dates_are_422_with_a_message(client, value, words):
    r = client.get("/search", params={"q": "ขอนแก่นศึกษา", "date_from": value})
    assert r.status_code == 422 and words in r.json()["detail"], r.text
    r = client.post("/search", json={"query": "ขอนแก่นศึกษา", "filters": {"date_from": value}})
    assert r.status_code == 422 and words in r.json()["detail"], r.text
    r = client.post("/chat", json={"question": "ขอนแก่นศึกษา", "filters": {"date_to": value}})
    assert r.status_code == 422
    if "Buddhist" in words:
        assert "2021-01-01" in r.json()["detail"]


# -- escaped outputs, safe links --------------------------------------------------------
EVIL = '<script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>'


def test_export_markdown_escapes_text_and_keeps_only_http_links(client):
    body = {"format": "md", "title": EVIL, "conversation": [
        {"question": EVIL, "answer": EVIL + " [1]", "citations": [
            {"n": 1, "title": EVIL, "link": "javascript:alert(4)", "publisher": EVIL},
            {"n": 2, "title": "ok", "link": "https://www.opdc.go.th/a b>c"}]}],
        "results": [{"title": EVIL, "snippet": EVIL, "publisher": EVIL,
                     "link": "/documents/abc?passage=1#passage"},
                    {"title": "d", "link": "data:text/html,<script>alert(5)</script>"}]}
    r = client.post("/export", json=body, headers={"host": "evil.example"})
    md = r.text
    assert r.status_code == 200
    assert "<script>" not in md and "<img" not in md and "](javascript:" not in md
    assert "javascript:alert(4)" not in md and "data:text/html" not in md
    assert "&lt;script&gt;" in md  # shown as text
    assert "<https://www.opdc.go.th/a%20b%3Ec>" in md
    assert "<https://km.example.go.th/documents/abc?passage=1#passage>" in md
    assert "evil.example" not in md and "testserver" not in md


def test_lessons_compare_markdown_escapes_stored_text():
    from km_search.lessons import compare
    from km_search.lessons.cards import extract_card
    from km_search.models import Document

    docs = [Document(doc_id=f"d{i}", title=EVIL, url=url, publisher=EVIL,
                     body="โครงการพัฒนาชุมชนจังหวัดขอนแก่น ปัจจัยความสำเร็จคือการมีส่วนร่วม "
                          + EVIL + " ของประชาชน")
            for i, url in enumerate(["javascript:alert(1)", "https://a.go.th/x y"])]
    md = compare.to_markdown([extract_card(d) for d in docs])
    assert "<script>" not in md and "<img" not in md
    assert "](javascript:" not in md and "<javascript:" not in md  # only ever as text
    assert "<https://a.go.th/x%20y>" in md


def test_document_page_links_only_http_urls(client, hard_home):
    from km_search.docstore import DocumentStore
    from km_search.models import Document

    with DocumentStore(hard_home / "corpus.db") as s:
        s.upsert([Document(doc_id="evil1", title=EVIL, body="เนื้อหา " + EVIL,
                           url="javascript:alert(document.cookie)"),
                  Document(doc_id="good1", title="ดี", body="เนื้อหา", url="https://a.go.th/1")])
    page = client.get("/documents/evil1", headers={"accept": "text/html"}).text
    assert 'href="javascript:' not in page and "<script>" not in page
    assert "javascript:alert(document.cookie)" in page  # visible as text
    page = client.get("/documents/good1", headers={"accept": "text/html"}).text
    assert 'href="https://a.go.th/1"' in page


# -- keep-alive after a server error (real uvicorn) --------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_500_keeps_the_connection_for_the_next_request(hard_home, fake_embedder):
    import uvicorn

    from api import create_app

    app = create_app(fake_config(hard_home), fake_embedder)

    def boom():
        raise RuntimeError("bug in a handler")
    app.add_api_route("/boom-test", boom)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/boom-test")
        r = conn.getresponse()
        assert r.status == 500 and b"still running" in r.read()
        sock = conn.sock
        conn.request("GET", "/health")  # same connection, no reconnect
        r = conn.getresponse()
        assert r.status == 200 and conn.sock is sock
        r.read()
        conn.close()
    finally:
        server.should_exit = True
        t.join(10)


# -- abuse limits and admin access ------------------------------------------------------
def _app(home, embedder, **kw):
    from api import create_app

    return create_app(fake_config(home, **kw), embedder)


@pytest.mark.parametrize("name,path,body", [
    ("feedback", "/feedback", {"query": "ขอนแก่นศึกษา", "vote": 1, "target": "answer"}),
    ("chat", "/chat", {"question": "ขอนแก่นศึกษาคืออะไร"}),
    ("export", "/export", {"format": "md", "results": [{"title": "ผล"}]}),
])
def test_rate_limits_per_client(hard_home, fake_embedder, name, path, body):
    app = _app(hard_home, fake_embedder, **{f"rate_{name}": "3/minute"})
    with TestClient(app, client=("10.0.0.5", 4000)) as a, \
            TestClient(app, client=("10.0.0.6", 4000)) as b:
        assert [a.post(path, json=body).status_code for _ in range(3)] == [200] * 3
        r = a.post(path, json=body)
        assert r.status_code == 429 and "too many" in r.json()["detail"]
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert b.post(path, json=body).status_code == 200  # another address is not limited
        assert a.get("/health").status_code == 200  # other endpoints are not limited


def test_admin_token_protects_judgements_and_stats_details(hard_home, fake_embedder):
    app = _app(hard_home, fake_embedder, admin_token="s3cret-token")
    with TestClient(app, client=("127.0.0.1", 4000)) as c:
        c.post("/feedback", json={"query": "ขอนแก่นศึกษา", "vote": 1, "target": "result",
                                  "doc_id": KK})
        r = c.get("/feedback/judgements.jsonl")
        assert r.status_code == 401 and "Bearer" in r.json()["detail"]
        assert c.get("/feedback/judgements.jsonl",
                     headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = c.get("/feedback/judgements.jsonl", headers={"Authorization": "Bearer s3cret-token"})
        assert r.status_code == 200 and KK in r.text
        st = c.get("/stats").json()
        assert "feedback" not in st and "query_cache" not in st and st["documents"] >= 5
        for _ in range(2):  # the same question twice: one embedding, then a cache hit
            assert c.get("/search", params={"q": "ปัจจัยความสำเร็จ ขอนแก่นศึกษา"}).status_code == 200
        st = c.get("/stats", headers={"Authorization": "Bearer s3cret-token"}).json()
        assert st["feedback"]["total"] >= 1
        assert st["query_cache"]["hits"] >= 1 and st["query_cache"]["misses"] >= 1
    # no token configured: only this machine may read them
    app = _app(hard_home, fake_embedder)
    with TestClient(app, client=("203.0.113.9", 4000)) as remote, \
            TestClient(app, client=("127.0.0.1", 4000)) as local:
        assert remote.get("/feedback/judgements.jsonl").status_code == 403
        assert "feedback" not in remote.get("/stats").json()
        assert local.get("/feedback/judgements.jsonl").status_code == 200


def test_feedback_db_is_capped_and_rotated(tmp_path):
    from km_search.feedback import FeedbackStore

    store = FeedbackStore(tmp_path / "feedback.db", max_bytes=256 * 1024)
    big = "คำตอบยาว " * 400  # ~4 KB a post
    for i in range(400):  # ~1.6 MB posted
        store.add(f"คำถาม {i}", 1 if i % 3 else -1, "result", doc_id=f"d{i % 7}", answer=big)
    sizes = [p.stat().st_size for p in tmp_path.iterdir() if p.name.startswith("feedback.db")]
    assert store.rotated.exists() and sum(sizes) <= 2 * 256 * 1024 + 64 * 1024
    assert store.counts()["total"] < 400  # the current file holds only the newest posts
    judged = list(store.judgements())
    assert judged and {j["question"] for j in judged} <= {f"คำถาม {i}" for i in range(400)}
    # both files are read: the export holds more than the current file alone
    assert len(judged) > store.counts()["queries"]


def test_hit_links_are_http_or_our_own_page():
    from km_search.answer import passage_link
    from km_search.models import Hit

    def hit(url):
        return Hit(rank=1, score=1.0, doc_id="d1", chunk_id=3, ordinal=0, title="t", url=url,
                   publisher="", published=None, published_raw="", provinces=[], text="x",
                   snippet="x", highlights=[], scores={})
    assert passage_link(hit("https://www.opdc.go.th/ก")) == "https://www.opdc.go.th/ก"
    for bad in ("javascript:alert(1)", "data:text/html,x", "  JAVASCRIPT:alert(1)", ""):
        assert passage_link(hit(bad)) == "/documents/d1?passage=3#passage"

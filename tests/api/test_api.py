"""The web API (api/) against the real app on the seed index, through TestClient."""
from __future__ import annotations

import io
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from tests.conftest import fake_config, make_config

KK = "6fcee9b62a8409b7"  # seed 000: ขอนแก่นศึกษา / Phang Nga
ADMIN = "test-admin-token"


@pytest.fixture(scope="module")
def api_home(seed_home, tmp_path_factory):
    """A copy of the seed home: the API writes feedback.db into its home."""
    dst = tmp_path_factory.mktemp("apihome") / "home"
    shutil.copytree(seed_home, dst, symlinks=True)
    return dst


@pytest.fixture(scope="module")
def client(api_home, embedder):
    from api import create_app

    # an admin client: these tests read the judgements export and /stats' feedback counts
    with TestClient(create_app(make_config(api_home, admin_token=ADMIN), embedder),
                    headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        yield c


# -- answers -------------------------------------------------------------------
@pytest.mark.parametrize("question", ["ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร",
                                      "success factors for Khon Kaen Study"])
def test_chat_answers_with_a_citation_of_the_khon_kaen_seed(client, question):
    r = client.post("/chat", json={"question": question})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["found"] and body["mode"] == "extractive"
    first = body["citations"][0]
    assert first["n"] == 1 and first["doc_id"] == KK
    assert first["link"].startswith(f"/documents/{KK}?passage=")  # seed has no URL
    assert "[1]" in body["answer"] and "ขอนแก่นศึกษา" in body["answer"]
    # every [n] in the answer has its citation
    import re
    assert {int(n) for n in re.findall(r"\[(\d+)\]", body["answer"])} == {
        c["n"] for c in body["citations"]}
    assert body["hits"][0]["doc_id"] == KK


@pytest.mark.parametrize("question", ["สูตรแกงเขียวหวาน", "how to bake sourdough bread",
                                      "football world cup results"])
def test_unrelated_questions_get_no_good_answer(client, question):
    body = client.post("/chat", json={"question": question}).json()
    assert body["found"] is False and body["citations"] == [] and body["mode"] == "none"
    assert "No good answer" in body["answer"] or "ไม่พบคำตอบ" in body["answer"]


# -- search ----------------------------------------------------------------------
def test_search_get_and_post_agree_and_carry_dates_and_highlights(client):
    g = client.get("/search", params={"q": "ขอนแก่นศึกษา", "k": 3}).json()
    p = client.post("/search", json={"query": "ขอนแก่นศึกษา", "k": 3}).json()
    assert [h["chunk_id"] for h in g["hits"]] == [h["chunk_id"] for h in p["hits"]]
    top = g["hits"][0]
    assert top["doc_id"] == KK and top["published"] == "2021-12-08"
    assert "2564" in top["published_raw"]
    assert top["highlights"] and all(0 <= a < b <= len(top["snippet"]) for a, b in top["highlights"])
    assert "ขอนแก่น" in [top["snippet"][a:b] for a, b in top["highlights"]]
    # /search writes its JSON itself: it must still be exactly the declared SearchOut
    from api.schemas import SearchOut

    for body in (g, p):
        assert SearchOut.model_validate(body).model_dump(mode="json") == body
    assert set(g["hits"][0]) == set(client.app.openapi()["components"]["schemas"]["HitOut"]["properties"])


def test_search_filters(client):
    old = client.post("/search", json={"query": "แผนเพิ่มประสิทธิภาพ", "filters": {
        "date_to": "2021-01-01"}}).json()["hits"]
    assert old and {h["published"] for h in old} == {"2020-11-23"}
    prov = client.get("/search", params={"q": "จังหวัด", "province": "พังงา"}).json()["hits"]
    assert prov and {h["doc_id"] for h in prov} == {KK}
    none = client.get("/search", params={"q": "จังหวัด", "date_from": "2030-01-01"}).json()
    assert none["hits"] == []
    f = client.get("/filters").json()
    assert "ขอนแก่น" in f["provinces"] and f["date_min"] == "2020-11-23"


# -- bad input -------------------------------------------------------------------
@pytest.mark.parametrize("method,path,kw,status,words", [
    ("get", "/search", {"params": {"q": ""}}, 400, "empty"),
    ("get", "/search", {"params": {"q": "   \u200b  "}}, 400, "empty"),
    ("get", "/search", {"params": {"q": "\x00\x01\x02\x7f"}}, 400, "empty"),
    ("post", "/search", {"json": {"query": "ก" * 100_000}}, 400, "too long"),
    ("post", "/chat", {"content": b"x" * (10 << 20), "headers": {"content-type": "application/json"}},
     413, "too large"),
    ("post", "/search", {"content": bytes(range(256)) * 40}, 422, "invalid request"),
    ("post", "/chat", {"json": {"question": 12345}}, 422, "question"),
    ("get", "/search", {"params": {"q": "x", "mode": "magic"}}, 422, "mode"),
    ("get", "/search", {"params": {"q": "x", "k": "0"}}, 422, "k"),
    ("get", "/search", {"params": {"q": "x", "date_from": "2564-13-45; DROP"}}, 422, "date_from"),
    ("get", "/documents/..%2f..%2fetc%2fpasswd", {}, 404, "Not Found"),  # no route, no file
    ("get", "/documents/...", {}, 400, "invalid document id"),
    ("get", "/documents/%2e%2e%5cwindows", {}, 400, "invalid document id"),
    ("get", "/documents/abc'%20OR%201=1", {}, 400, "invalid document id"),
    ("get", "/documents/0000000000000000", {}, 404, "no document"),
    ("post", "/export", {"json": {"format": "md"}}, 400, "nothing to export"),
    ("post", "/feedback", {"json": {"query": "x", "vote": 5, "target": "answer"}}, 422, "vote"),
])
def test_bad_input_gets_a_clear_4xx(client, method, path, kw, status, words):
    r = getattr(client, method)(path, **kw)
    assert r.status_code == status, r.text
    assert words and words in r.json()["detail"]
    assert "root:" not in r.text and "Traceback" not in r.text
    assert client.get("/health").json()["status"] == "ok"  # still up


@pytest.mark.parametrize("query", ["<script>alert(1)</script><img src=x onerror=alert(2)>",
                                   "'; DROP TABLE passages; -- \" OR 1=1",
                                   "%00%27 UNION SELECT * FROM docs"])
def test_malicious_queries_are_answered_safely(client, query):
    r = client.post("/chat", json={"question": query})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json()["question"] == query.strip()  # echoed as data, for textContent
    assert client.get("/stats").json()["passages"] > 5  # tables intact


def test_page_and_security_headers(client):
    r = client.get("/")
    assert r.status_code == 200 and "app.js" in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    s = client.get("/search", params={"q": "ขอนแก่น", "mode": "bm25"})
    assert s.headers["x-content-type-options"] == "nosniff" and "content-security-policy" in s.headers
    assert s.headers.get_list("referrer-policy") == ["no-referrer"]  # once, not duplicated
    d = client.get("/docs")  # Swagger UI loads its own scripts: no CSP there
    assert d.status_code == 200 and "content-security-policy" not in d.headers
    assert d.headers["x-content-type-options"] == "nosniff"
    assert client.get("/static/app.js").status_code == 200
    assert "innerHTML" not in client.get("/static/app.js").text
    assert client.get("/docs").status_code == 200
    assert "/chat" in client.get("/openapi.json").json()["paths"]


# -- documents --------------------------------------------------------------------
def test_document_json_and_escaped_html_with_the_cited_passage(client):
    cite = client.post("/chat", json={"question": "success factors for Khon Kaen Study"}).json()[
        "citations"][0]
    doc = client.get(f"/documents/{KK}").json()
    assert doc["doc_id"] == KK and "ขอนแก่นศึกษา" in doc["body"] and len(doc["passages"]) >= 2
    r = client.get(cite["link"], headers={"accept": "text/html"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<mark id="passage">' in r.text and "<script" not in r.text


# -- feedback / stats ------------------------------------------------------------
def test_feedback_is_counted_and_exported_as_judgements(client):
    before = client.get("/stats").json()["feedback"]
    q = "ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร"
    assert client.post("/feedback", json={"query": q, "vote": 1, "target": "answer",
                                          "doc_id": KK, "answer": "..."}).status_code == 200
    client.post("/feedback", json={"query": q, "vote": -1, "target": "result",
                                   "doc_id": "060103db4d9e3160", "chunk_id": 7})
    client.post("/feedback", json={"query": "<b>x</b>", "vote": 1, "target": "answer"})
    st = client.get("/stats").json()
    assert st["feedback"]["total"] == before["total"] + 3
    assert st["feedback"]["up"] == before["up"] + 2 and st["feedback"]["down"] == before["down"] + 1
    assert st["documents"] == 5 and st["model"] and st["index_age_seconds"] is not None
    r = client.get("/feedback/judgements.jsonl")
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert {"lang": "th", "question": q, "doc_id": KK, "relevance": 1}.items() <= rows[0].items()
    assert any(j["doc_id"] == "060103db4d9e3160" and j["relevance"] == 0 for j in rows)


# -- export -----------------------------------------------------------------------
def test_export_markdown_and_docx_with_citations(client):
    chat = client.post("/chat", json={"question": "ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร"}).json()
    body = {"title": "เวิร์กช็อป KM", "conversation": [
        {"question": chat["question"], "answer": chat["answer"], "citations": chat["citations"]}],
        "results": [{k: h[k] for k in ("title", "link", "publisher", "published", "published_raw",
                                        "snippet")} for h in chat["hits"][:2]]}
    md = client.post("/export", json={**body, "format": "md"})
    assert md.status_code == 200 and "attachment" in md.headers["content-disposition"]
    assert "# เวิร์กช็อป KM" in md.text and "[1]" in md.text
    assert f"/documents/{KK}?passage=" in md.text and "พ.ศ. 2564" in md.text
    dx = client.post("/export", json={**body, "format": "docx"})
    assert dx.status_code == 200
    import docx
    paras = docx.Document(io.BytesIO(dx.content)).paragraphs
    text = "\n".join(p.text for p in paras)
    assert "ขอนแก่นศึกษา" in text and "[1]" in text and KK in text
    from api.routes import public_url
    _assert_docx_results(paras, body["results"], public_url(client.app.state.service.cfg))


def _assert_docx_results(paras, results: list[dict], base: str) -> None:
    """The DOCX results section: a heading, then per result a numbered paragraph with the
    title in bold, publisher and both date forms, its snippet and its absolute link."""
    heads = [i for i, p in enumerate(paras) if p.text == "ผลการค้นหา / Search results"]
    assert len(heads) == 1 and paras[heads[0]].style.name == "Heading 1"
    items = [p for p in paras[heads[0] + 1:] if p.style.name == "List Number"]
    assert len(items) == len(results)
    rest = "\n".join(p.text for p in paras[heads[0] + 1:])
    for p, h in zip(items, results):
        bold = [r.text for r in p.runs if r.bold]
        assert bold == [h["title"]]
        assert h["publisher"] in p.text and h["published_raw"] in p.text
        assert f"ค.ศ. {h['published']}" in p.text
        assert h["snippet"] in rest and base.rstrip("/") + h["link"] in rest


# -- generative mode via a stub OpenAI-compatible server --------------------------
class _Stub(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.requests.append((self.path, self.headers.get("Authorization"), body))
        out = json.dumps({"choices": [{"message": {"role": "assistant", "content":
                          "ขอนแก่นศึกษาสำเร็จเพราะการจัดการความรู้ [2] และการมีส่วนร่วม [9]"}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(out.encode())

    def log_message(self, *a):
        pass


def test_generative_mode_through_a_local_stub_and_fallback(api_home, embedder):
    from api import create_app

    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
        c = TestClient(create_app(make_config(api_home, llm_url=url, llm_api_key="k"), embedder))
        body = c.post("/chat", json={"question": "success factors for Khon Kaen Study",
                                     "history": [{"role": "user", "content": "สวัสดี"}]}).json()
        path, auth, sent = _Stub.requests[-1]
        assert path == "/v1/chat/completions" and auth == "Bearer k"
        assert "[1]" in sent["messages"][-1]["content"] and sent["messages"][1]["content"] == "สวัสดี"
        assert body["mode"] == "generative" and body["found"]
        assert body["answer"] == "ขอนแก่นศึกษาสำเร็จเพราะการจัดการความรู้ [1] และการมีส่วนร่วม"  # [2] renumbered, [9] dropped
        assert len(body["citations"]) == 1
        # unrelated questions never reach the endpoint
        n = len(_Stub.requests)
        assert not c.post("/chat", json={"question": "how to bake sourdough bread"}).json()["found"]
        assert len(_Stub.requests) == n
        # explicit opt-out
        assert c.post("/chat", json={"question": "ขอนแก่นศึกษา", "generate": False}).json()[
            "mode"] == "extractive"
    finally:
        srv.shutdown()
        srv.server_close()  # the port now refuses connections: the fallback is immediate
    down = c.post("/chat", json={"question": "success factors for Khon Kaen Study"}).json()
    assert down["mode"] == "extractive" and down["found"] and "unavailable" in down["note"]


# -- index missing / swapped --------------------------------------------------------
def test_no_index_is_reported_not_crashed(tmp_path, fake_embedder):
    from api import create_app

    c = TestClient(create_app(fake_config(tmp_path / "empty"), fake_embedder))
    assert c.get("/health").status_code == 503
    r = c.get("/search", params={"q": "ขอนแก่น"})
    assert r.status_code == 503 and "km-search index" in r.json()["detail"]
    assert c.get("/").status_code == 200


def test_a_finished_rebuild_is_picked_up(fake_work_home, fake_embedder):
    from api import create_app
    from km_search.docstore import DocumentStore
    from indexer import update_index
    from km_search.models import Document

    cfg = fake_config(fake_work_home, reload_seconds=0)
    c = TestClient(create_app(cfg, fake_embedder))
    build = c.get("/stats").json()["build"]
    # not indexed yet (Thai 4-grams may match other passages weakly, never the new one)
    assert not any(h["doc_id"].startswith("cashew") for h in c.get(
        "/search", params={"q": "มะม่วงหิมพานต์", "mode": "bm25"}).json()["hits"])
    with DocumentStore(cfg.corpus_db) as store:
        store.upsert([Document(doc_id="cashew0000000001", title="สหกรณ์มะม่วงหิมพานต์",
                               body="จังหวัดระนองส่งเสริมสหกรณ์มะม่วงหิมพานต์ให้ชุมชนมีรายได้",
                               published="2024-01-05", source="test")])
    update_index(cfg, embedder=fake_embedder)
    hits = c.get("/search", params={"q": "มะม่วงหิมพานต์", "mode": "bm25"}).json()["hits"]
    assert hits and hits[0]["doc_id"] == "cashew0000000001"
    st = c.get("/stats").json()
    assert st["build"] != build and st["documents"] == 6


def test_a_failed_reload_keeps_the_old_build_serving(fake_work_home, fake_embedder):
    """A rebuild whose files are damaged is not swapped in: the old build keeps answering,
    /health says why, and the next good build is picked up."""
    from api import create_app
    from km_search.docstore import DocumentStore
    from indexer import update_index
    from km_search import indexdir
    from km_search.models import Document

    cfg = fake_config(fake_work_home, reload_seconds=0)
    c = TestClient(create_app(cfg, fake_embedder))
    old = c.get("/health").json()["build"]
    with DocumentStore(cfg.corpus_db) as store:
        store.upsert([Document(doc_id="cashew0000000002", title="สหกรณ์มะม่วงหิมพานต์",
                               body="จังหวัดระนองส่งเสริมสหกรณ์มะม่วงหิมพานต์ให้ชุมชนมีรายได้",
                               published="2024-01-05", source="test")])
    update_index(cfg, embedder=fake_embedder)
    bad = indexdir.live_build(fake_work_home)
    (bad / "vectors.faiss").write_bytes(b"truncated by a full disk")
    r = c.get("/search", params={"q": "ขอนแก่นศึกษา", "k": 3})
    assert r.status_code == 200 and r.json()["hits"][0]["doc_id"] == KK  # old build answers
    assert not any(h["doc_id"].startswith("cashew") for h in c.get(
        "/search", params={"q": "มะม่วงหิมพานต์", "mode": "bm25"}).json()["hits"])
    h = c.get("/health")  # 503 "degraded": answering, but from a stale build
    assert h.status_code == 503 and h.json()["status"] == "degraded"
    assert h.json()["build"] == old != bad.name
    assert "still serving the old one" in h.json()["error"] and "rebuild" in h.json()["error"]
    chat = c.post("/chat", json={"question": "ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร"}).json()
    assert chat["found"] and chat["citations"][0]["doc_id"] == KK
    update_index(cfg, full=True, embedder=fake_embedder)  # a good build replaces the damaged one
    hits = c.get("/search", params={"q": "มะม่วงหิมพานต์", "mode": "bm25"}).json()["hits"]
    assert hits and hits[0]["doc_id"] == "cashew0000000002"
    h = c.get("/health")
    assert h.status_code == 200 and h.json()["status"] == "ok" and "error" not in h.json()
    assert h.json()["build"] not in (old, bad.name)


@pytest.mark.slow
def test_chat_feedback_export_over_real_http(work_home, embedder):
    """`km-search serve` as a subprocess on a free 127.0.0.1 port, driven over real HTTP:
    POST /chat, POST /feedback (stored in the home's feedback.db), POST /export (DOCX)."""
    import sqlite3

    import docx
    import httpx

    from bench import serving

    with serving.serving(make_config(work_home), work_home, timeout=300) as srv, \
            httpx.Client(base_url=srv.url, timeout=120) as h:
        chat = h.post("/chat", json={"question": "ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร"})
        assert chat.status_code == 200 and chat.headers["content-type"].startswith("application/json")
        body = chat.json()
        assert body["found"] and body["citations"][0]["doc_id"] == KK and "[1]" in body["answer"]
        none = h.post("/chat", json={"question": "how to bake sourdough bread"}).json()
        assert none["found"] is False and none["citations"] == []
        bad = h.post("/chat", content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 422
        fb = h.post("/feedback", json={"query": body["question"], "vote": 1, "target": "answer",
                                       "doc_id": KK, "answer": body["answer"]})
        assert fb.status_code == 200
        assert h.post("/feedback", json={"query": "x", "vote": 5, "target": "answer"}).status_code == 422
        assert h.get("/stats").json()["feedback"]["up"] == 1
        rows = [json.loads(x) for x in h.get("/feedback/judgements.jsonl").text.splitlines()]
        assert rows == [{**rows[0], "question": body["question"], "doc_id": KK, "relevance": 1}]
        results = [{k: x[k] for k in ("title", "link", "publisher", "published", "published_raw",
                                      "snippet")} for x in body["hits"][:2]]
        dx = h.post("/export", json={"format": "docx", "title": "สรุปบทเรียน", "conversation": [
            {"question": body["question"], "answer": body["answer"],
             "citations": body["citations"]}], "results": results})
        assert dx.status_code == 200 and "attachment" in dx.headers["content-disposition"]
        assert dx.headers["content-type"].startswith("application/vnd.openxmlformats")
        paras = docx.Document(io.BytesIO(dx.content)).paragraphs
        assert paras[0].text == "สรุปบทเรียน" and "ขอนแก่นศึกษา" in "\n".join(p.text for p in paras)
        _assert_docx_results(paras, results, srv.url + "/")
    # the vote is on disk in the served home, after the server stopped
    db = sqlite3.connect(work_home / "feedback.db")
    assert db.execute("SELECT COUNT(*) FROM feedback WHERE vote = 1").fetchone()[0] == 1
    db.close()


def test_lessons_endpoints_and_search_facets(client):
    r = client.get("/search", params={"q": "ปัจจัยความสำเร็จ ขอนแก่นศึกษา", "k": 5, "mode": "bm25"})
    facets = r.json()["facets"]
    assert facets["province"]["ขอนแก่น"] >= 1 and "2565" in facets["fiscal_year"]
    r = client.get("/lessons", params={"province": "พังงา"})
    assert r.status_code == 200 and r.json()["lessons"][0]["doc_id"] == "6fcee9b62a8409b7"
    assert r.json()["lessons"][0]["ref"] == "6fcee9b62a8409b7#พังงา"
    rows = [x["ref"] for x in client.get("/lessons").json()["lessons"]]  # one row per case
    assert {"6fcee9b62a8409b7#ขอนแก่น", "6fcee9b62a8409b7#พังงา"} <= set(rows)
    card = client.get("/lessons/6fcee9b62a8409b7").json()
    assert [c["ref"] for c in card["cases"]] == ["6fcee9b62a8409b7#ขอนแก่น", "6fcee9b62a8409b7#พังงา"]
    assert any("ขอนแก่นศึกษา" in p["text"] for p in card["programmes"])
    assert all(c["doc_id"] == "6fcee9b62a8409b7" for f in card["success_factors"] for c in f["citations"])
    sim = client.get("/lessons/6fcee9b62a8409b7/similar", params={"k": 2}).json()
    assert len(sim) == 2 and all(s["doc_id"] != "6fcee9b62a8409b7" for s in sim)
    r = client.post("/lessons/compare", json={"refs": ["6fcee9b62a8409b7#ขอนแก่น",
                                                       "6fcee9b62a8409b7#พังงา"], "format": "md"})
    assert r.status_code == 200 and "สมัชชาพังงา" in r.text and "ขอนแก่นศึกษา" in r.text
    assert client.post("/lessons/compare", json={"refs": ["a"]}).status_code == 422
    assert client.post("/lessons/compare", json={"refs": ["nope1", "nope2"]}).status_code == 422
    assert client.get("/lessons/does-not-exist").status_code == 404


def test_feedback_judgements_are_scored_by_eval(client, seed_home, tmp_path):
    """Users' thumbs become a test set: /feedback/judgements.jsonl -> km-search eval."""
    from tests.conftest import make_config
    from bench.evaluate import format_table, load_judgements, run_judgements

    q = "คู่เสี่ยว เกี่ยวก้อย แก้ปัญหาความยากจน"
    client.post("/feedback", json={"query": q, "vote": 1, "target": "result", "doc_id": KK})
    path = tmp_path / "judgements.jsonl"
    path.write_text(client.get("/feedback/judgements.jsonl").text, encoding="utf-8")
    judged = load_judgements(path)
    assert KK in judged[q]
    res = run_judgements(make_config(seed_home), path, log=lambda m: None)
    assert res["questions"] == len(judged)
    assert res["modes"]["bm25"]["R@10"] > 0 and "judged questions" in format_table(res)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        load_judgements(bad)

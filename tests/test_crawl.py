"""Crawler tests against local fixture sites (tests/crawl_server.py); no real host."""
from __future__ import annotations

import json

import pytest

from corpus.crawl import load_sources
from corpus.crawl.extract import decode_html
from corpus.crawl.runner import crawl_status, run_crawl
from km_search.docstore import DocumentStore
from crawl_server import SITES, Server, sources_toml
from km_search.settings import load_config

EXPECTED = json.loads((SITES / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(scope="module")
def crawled(server, tmp_path_factory):
    """One full crawl of both fixture sources; (cfg, sources file, reports, request log)."""
    home = tmp_path_factory.mktemp("crawlhome")
    src = home / "sources.toml"
    src.write_text(sources_toml(server.base), encoding="utf-8")
    cfg = load_config(home=str(home))
    server.clear()
    reports = run_crawl(cfg, sources=src, index=False)
    return cfg, src, reports, list(server.log)


def _docs(cfg):
    with DocumentStore(cfg.corpus_db) as store:
        return {d.url.split(":", 2)[2].split("/", 1)[1]: d for d in store.iter_documents()}


def test_full_crawl_stores_every_allowed_document(crawled):
    cfg, _, reports, _ = crawled
    docs = {"/" + k: v for k, v in _docs(cfg).items()}
    assert set(docs) == set(EXPECTED)
    for path, exp in EXPECTED.items():
        d = docs[path]
        assert d.title == exp["title"], path
        assert d.published == exp["published"], path
        assert d.publisher == ("กรมการพัฒนาชุมชน" if path.startswith("/agency") else "สำนักงาน ก.พ.ร.")
        assert d.body.strip()
        assert "แชร์หน้านี้" not in d.body and "Visited" not in d.body and "หน้าแรก" not in d.body
    assert "ขอนแก่น" in docs["/opdc/news/a0.html"].provinces
    assert "เชียงใหม่" in docs["/opdc/news/tis620.html"].provinces  # windows-874 page decoded
    assert "Khon Kaen" in docs["/agency/report1.pdf"].body
    assert "นครราชสีมา" in docs["/agency/report1.docx"].provinces
    assert all(r.finished for r in reports)


def test_forbidden_offsite_and_bad_urls(crawled, server):
    _, _, reports, log = crawled
    paths = [p for _, p, _ in log]
    assert not any(p.startswith("/private/") for p in paths)  # robots.txt
    assert all(h == f"127.0.0.1:{server.port}" for h, _, _ in log)  # off-site never fetched
    errors = {u.split(str(server.port), 1)[1]: r for rep in reports for u, r in rep.errors}
    assert "disallowed" in errors["/offsite-redirect"]
    assert "loop" in errors["/loop/a"]
    assert "too large" in errors["/huge.html"]
    assert "PDF" in errors["/agency/broken.pdf"]
    assert any(k.startswith("/endless/") and "pagination limit" in v for k, v in errors.items())
    assert ("/opdc/news/flaky.html", 500) in [(p, s) for _, p, s in log]  # retried, then stored


def test_second_crawl_is_conditional_and_fetches_nothing_unchanged(crawled, server):
    cfg, src, _, _ = crawled
    before = {k: d.hash for k, d in _docs(cfg).items()}
    server.clear()
    reports = run_crawl(cfg, sources=src, index=False)
    ok = set(server.paths(200))
    assert ok <= {"/robots.txt", "/huge.html"}, ok  # everything else answered 304
    assert sum(r.added + r.changed for r in reports) == 0
    assert sum(r.not_modified for r in reports) >= len(EXPECTED)
    assert {k: d.hash for k, d in _docs(cfg).items()} == before


def test_changed_and_vanished_pages(crawled, server):
    cfg, src, _, _ = crawled
    page = (SITES / "opdc/news/a2.html").read_text(encoding="utf-8")
    server.overrides["/opdc/news/a2.html"] = page.replace("<p>", "<p>ปรับปรุงข่าว ", 1).encode()
    server.gone.add("/opdc/news/flaky.html")
    try:
        (rep,) = run_crawl(cfg, ["opdc"], sources=src, index=False, prune=True)
    finally:
        server.overrides.clear()
        server.gone.clear()
    assert rep.changed == 1 and rep.added == 0 and rep.pruned == 1
    docs = _docs(cfg)
    assert "ปรับปรุงข่าว" in docs["opdc/news/a2.html"].body
    assert "opdc/news/flaky.html" not in docs
    status = {s["source"]: s for s in crawl_status(cfg)}
    assert status["opdc"]["status"] == "done" and status["opdc"]["errors"] >= 1
    assert status["agency"]["documents"] == 3


def test_shipped_sources_file_and_decoding():
    srcs = load_sources()
    assert {"opdc", "thaigov"} <= set(srcs.sources)
    assert srcs.sources["opdc"].allowed("https://www.opdc.go.th/content/abc")
    assert not srcs.sources["opdc"].allowed("https://evil.example/content/abc")
    raw = "<meta charset='windows-874'><p>สำนักงาน</p>".encode("cp874")
    assert "สำนักงาน" in decode_html(raw, "text/html")
    assert "สำนักงาน" in decode_html("<p>สำนักงาน</p>".encode("tis-620"), "text/html")


def test_pages_per_second(crawled):
    _, _, reports, _ = crawled
    fetched = sum(r.fetched for r in reports)
    secs = sum(r.seconds for r in reports)
    print(f"\ncrawl: {fetched} pages in {secs:.2f}s = {fetched / secs:.1f} pages/s")
    assert fetched >= len(EXPECTED)


def test_crawled_documents_are_searchable(crawled, embedder, tmp_path):
    """The crawl's store goes through the normal indexer; hits cite the crawled URLs."""
    import shutil

    from indexer import update_index
    from km_search.search import Searcher

    cfg, _, _, _ = crawled
    home = tmp_path / "home"
    shutil.copytree(cfg.home_path, home)
    from conftest import make_config

    cfg2 = make_config(home)
    st = update_index(cfg2, embedder=embedder)
    with DocumentStore(cfg2.corpus_db) as store:
        assert st.documents == store.count() >= len(EXPECTED) - 1  # an earlier test prunes one
    s = Searcher(cfg2, embedder)
    hit = s.search("สมัชชาพังงา", k=1, mode="bm25")[0]
    assert hit.url.endswith("/opdc/news/a0.html") and hit.published
    hits = s.search("success factors for Khon Kaen Study", k=3)
    assert any("ขอนแก่น" in h.text for h in hits)


def test_crawl_status_cli(crawled):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    cfg, _, _, _ = crawled
    r = subprocess.run([sys.executable, "-m", "cli", "crawl", "--status"], cwd=ROOT,
                       env=dict(os.environ, KM_SEARCH_HOME=str(cfg.home_path)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "fixture_opdc" in r.stdout or "docs" in r.stdout

"""Crawler tests against local fixture sites (tests/crawl_server.py, made by
tests/fixtures/make_sites.py with a hand-written answer key); no real host.

Each module fixture crawls once into its own home and is only read afterwards; a test
that re-crawls works on a private copy of that home, so the tests pass in any order.
"""
from __future__ import annotations

import shutil
import tomllib

import pytest

from corpus.crawl import load_sources
from corpus.crawl.config import Sources
from corpus.crawl.fetch import Fetcher
from corpus.crawl.report import score, table
from corpus.crawl.runner import crawl_status, run_crawl, run_every
from tests.crawl_server import Server, answers, sources_toml, today_th
from km_search.docstore import DocumentStore
from km_search.settings import load_config

TUNED = ("wp", "joomla", "oldtable")  # the sites the extractor was developed against


@pytest.fixture(scope="module")
def servers():
    s = {name: Server(name) for name in (*TUNED, "traps", "opdc", "thaigov")}
    yield s
    for v in s.values():
        v.close()


def _crawl(servers, tmp_path_factory, name: str, **kw):
    home = tmp_path_factory.mktemp(name)
    src = home / "sources.toml"
    src.write_text(sources_toml({k: v for k, v in servers.items() if k in (*TUNED, "traps")}, **kw),
                   encoding="utf-8")
    cfg = load_config(home=str(home))
    fetcher = Fetcher(load_sources(src))
    for s in servers.values():
        s.clear()
    try:
        reports = run_crawl(cfg, sources=src, index=False, fetcher=fetcher)
    finally:
        fetcher.close()
    logs = {k: list(v.log) for k, v in servers.items()}
    return cfg, src, reports, logs, fetcher


@pytest.fixture(scope="module")
def zero(servers, tmp_path_factory):
    """Zero-config crawl (start URL only) of the tuned sites and the traps site."""
    return _crawl(servers, tmp_path_factory, "zero")


@pytest.fixture(scope="module")
def with_selectors(servers, tmp_path_factory):
    return _crawl(servers, tmp_path_factory, "sel", selectors=True)


def _docs(cfg, source: str | None = None):
    with DocumentStore(cfg.corpus_db) as store:
        return [d for d in store.iter_documents() if source is None or d.source == source]


def _key(site: str) -> dict:
    key = answers(site)
    key["markers"] = [m.replace("{{TODAY_TH}}", today_th()) for m in key["markers"]]
    return key


def _copy(cfg, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(cfg.home_path, home)
    return load_config(home=str(home)), home / "sources.toml"


def _scores(cfg, sites, config):
    return [score(_docs(cfg, s), _key(s), site=s, config=config) for s in sites]


def _assert_targets(scores):
    found = sum(s.found for s in scores)
    assert found == sum(s.expected for s in scores), [m for s in scores for m in s.misses]
    assert sum(s.title_right for s in scores) >= 0.90 * found, [m for s in scores for m in s.misses]
    assert sum(s.date_right for s in scores) >= 0.85 * found, [m for s in scores for m in s.misses]
    assert sum(s.with_chrome for s in scores) <= 0.05 * found, [m for s in scores for m in s.misses]
    assert sum(s.extra for s in scores) == 0, [m for s in scores for m in s.misses]
    assert sum(s.duplicates for s in scores) == 0


# ---- answer key ------------------------------------------------------------------------------
def test_zero_config_meets_the_answer_key(zero):
    cfg, *_ = zero
    scores = _scores(cfg, TUNED, "zero-config")
    print("\n" + table(scores))
    _assert_targets(scores)


@pytest.mark.slow  # crawls every fixture site with selectors
def test_selector_config_meets_the_answer_key(with_selectors):
    cfg, *_ = with_selectors
    scores = _scores(cfg, TUNED, "selectors")
    print("\n" + table(scores))
    _assert_targets(scores)


def test_shipped_opdc_and_thaigov_definitions(servers, tmp_path):
    """corpus/sources.toml's opdc/thaigov tables, pointed at local pages shaped like theirs."""
    shipped = tomllib.loads(load_sources().path.read_text(encoding="utf-8"))
    srcs = load_sources()
    for name in ("opdc", "thaigov"):
        s, table_ = srcs.sources[name], shipped["sources"][name]
        base = servers[name].base
        s.start_urls = [base + u.split(".go.th", 1)[1] for u in table_["start_urls"]]
        s.allowed_hosts = [servers[name].host]
        s.delay, s.retries, s.backoff = 0.0, 0, 0.0
        assert s.article_links and s.title and s.body  # the shipped selectors are what runs
    srcs.rate_limits = {}
    cfg = load_config(home=str(tmp_path))
    reports = run_crawl(cfg, ["opdc", "thaigov"], sources=Sources(srcs.sources, {}, None), index=False)
    assert all(not r.errors for r in reports), [r.errors for r in reports]
    for name in ("opdc", "thaigov"):
        sc = score(_docs(cfg, name), _key(name), site=name, config="shipped")
        assert (sc.found, sc.title_right, sc.date_right, sc.with_chrome, sc.extra) == \
            (sc.expected, sc.expected, sc.expected, 0, 0), sc.misses
    pubs = {d.publisher for d in _docs(cfg, "thaigov")}
    assert pubs == {"สำนักนายกรัฐมนตรี (thaigov.go.th)"}  # the fixed publisher wins


# ---- what the key cannot see -----------------------------------------------------------------
def test_thai_pdf_attachment_repaired_and_titled_by_its_heading(zero, servers):
    cfg, *_ = zero
    (pdf,) = [d for d in _docs(cfg, "wp") if d.url.endswith(".pdf")]
    assert pdf.title == "รายงานผลการจัดการความรู้ ประจำปีงบประมาณ 2566"  # not "Microsoft Word - …"
    assert "ความสำเร็จของโครงการ" in pdf.body and "ที่ประชุมเห็นชอบ" in pdf.body
    assert "ส าเร จ" in pdf.metadata["raw_text"] and pdf.metadata["thai_repaired"] is True
    assert "ขอนแก่น" in pdf.provinces


def test_download_php_attachments_typed_by_content(zero):
    cfg, *_ = zero
    files = {d.url.rsplit("=", 1)[1]: d for d in _docs(cfg, "joomla") if "download.php" in d.url}
    assert files["plan2566.pdf"].metadata["file_type"] == "pdf"
    assert files["minutes2566.docx"].metadata["file_type"] == "docx"
    assert files["plan2566.pdf"].metadata["content_type"] == "application/octet-stream"


def test_tracking_links_are_one_document(zero, servers):
    cfg, _, _, logs, _ = zero
    urls = [d.url for d in _docs(cfg)]
    assert not any("utm_" in u or "fbclid" in u for u in urls)
    assert len(urls) == len(set(urls))
    fetched = [p for _, p, _ in logs["wp"]] + [p for _, p, _ in logs["joomla"]]
    assert not any("utm_" in p or "fbclid" in p for p in fetched)  # the queue is canonical too


def test_bootstrap_numbered_pagination_is_followed(zero, servers):
    _, _, _, logs, _ = zero
    assert {"/index.php/news?page=2", "/index.php/news?page=3"} <= {p for _, p, _ in logs["joomla"]}


def test_pagination_warning_when_next_selector_misses(servers, tmp_path):
    src = tmp_path / "s.toml"
    src.write_text(f'''[sources.jm]
start_urls = ["{servers["joomla"].base}/index.php/news"]
article_links = ".item-title a"
next_page = "a[rel=next]"
delay = 0.0
sitemaps = false
follow_links = false
''', encoding="utf-8")
    (rep,) = run_crawl(load_config(home=str(tmp_path)), sources=src, index=False)
    assert any("numbered pages" in w for _, w in rep.warnings)
    assert rep.added == 9 + 2  # all nine articles (three list pages) and the two attachments


def test_sitemaps_are_read(zero, servers):
    _, _, _, logs, _ = zero
    wp = [p for _, p, _ in logs["wp"]]
    assert "/wp-sitemap.xml" in wp and "/wp-sitemap-posts-post-1.xml" in wp  # robots.txt Sitemap:
    assert "/sitemap.xml" in [p for _, p, _ in logs["oldtable"]]  # the unlisted default place


def test_politeness_and_bad_urls(zero, servers):
    _, _, reports, logs, fetcher = zero
    log = logs["traps"]
    assert not any(p.startswith("/private/") for _, p, _ in log)  # robots.txt
    assert all(h == servers["traps"].host for h, _, _ in log)  # off-site never fetched
    (rep,) = [r for r in reports if r.source == "traps"]
    errors = {u.split(str(servers["traps"].port), 1)[1]: r for u, r in rep.errors}
    assert "robots.txt" in errors["/private/secret.html"]
    assert "disallowed" in errors["/offsite-redirect"]
    assert "loop" in errors["/loop/a"]
    assert "too large" in errors["/huge.html"]
    assert "PDF" in errors["/files/broken.pdf"]
    assert any(k.startswith("/endless/") and "pagination limit" in v for k, v in errors.items())
    assert ("/news/flaky.html", 500) in [(p, s) for _, p, s in log]  # retried, then stored
    assert [(p, s) for _, p, s in log if p == "/news/busy.html"][:2] == [("/news/busy.html", 429),
                                                                         ("/news/busy.html", 200)]
    assert fetcher.retry_waits == [1.0]  # Retry-After: 1 honoured before the retry


# ---- re-crawls (each on a private copy of a crawled home) ------------------------------------
def test_second_crawl_is_conditional_and_fetches_nothing_unchanged(zero, servers, tmp_path):
    cfg, src = _copy(zero[0], tmp_path)
    before = {d.doc_id: d.hash for d in _docs(cfg)}
    for s in servers.values():
        s.clear()
    reports = run_crawl(cfg, sources=src, index=False)
    for name in TUNED:
        ok = set(servers[name].paths(200))
        assert ok <= {"/robots.txt"}, (name, ok)  # everything else 304, or skipped by lastmod
    assert "/huge.html" in servers["traps"].paths(200)  # refused again from its size
    assert sum(r.added + r.changed for r in reports) == 0
    assert sum(r.not_modified for r in reports) >= sum(len(answers(s)["documents"]) for s in TUNED)
    assert {d.doc_id: d.hash for d in _docs(cfg)} == before
    # wp posts have sitemap lastmod older than the first fetch: not even a conditional GET
    wp_posts = [p for p in servers["wp"].paths() if p.startswith("/km-forum")]
    assert wp_posts == []


def test_failed_unchanged_file_is_still_an_error(zero, tmp_path):
    cfg, src = _copy(zero[0], tmp_path)
    (rep,) = run_crawl(cfg, ["traps"], sources=src, index=False)
    reasons = dict(rep.errors)
    broken = next(u for u in reasons if u.endswith("/files/broken.pdf"))
    assert reasons[broken].startswith("unchanged since it failed: broken PDF")
    status = {s["source"]: s for s in crawl_status(cfg)}
    assert broken in [u for u, _ in status["traps"]["error_list"]]


def test_changed_and_vanished_pages(zero, servers, tmp_path):
    cfg, src = _copy(zero[0], tmp_path)
    jm = servers["joomla"]
    path = "/index.php/news/102-village-fund"
    page = (jm.root / "index.php/news/102-village-fund.html").read_bytes()
    jm.overrides[path] = page.replace("<p>".encode(), "<p>ปรับปรุงข่าว ".encode(), 1)
    jm.gone.add("/index.php/news/105-km-day")
    try:
        (rep,) = run_crawl(cfg, ["joomla"], sources=src, index=False, prune=True)
    finally:
        jm.overrides.clear()
        jm.gone.clear()
    assert rep.changed == 1 and rep.added == 0 and rep.pruned == 1
    docs = {d.url.split(jm.host, 1)[1]: d for d in _docs(cfg, "joomla")}
    assert "ปรับปรุงข่าว" in docs[path].body
    assert "/index.php/news/105-km-day" not in docs


def test_incomplete_crawl_does_not_prune(zero, servers, tmp_path):
    cfg, src = _copy(zero[0], tmp_path)
    n_before = len(_docs(cfg, "joomla"))
    servers["joomla"].gone.add("/index.php/news/105-km-day")
    try:
        (rep,) = run_crawl(cfg, ["joomla"], sources=src, index=False, prune=True, max_pages=3)
    finally:
        servers["joomla"].gone.clear()
    assert rep.pruned == 0 and "prune skipped" in rep.note and "max_pages=3" in rep.note
    assert len(_docs(cfg, "joomla")) == n_before


def test_max_pages_stops_and_the_next_run_resumes(servers, tmp_path):
    src = tmp_path / "s.toml"
    src.write_text(sources_toml({"joomla": servers["joomla"]}), encoding="utf-8")
    cfg = load_config(home=str(tmp_path))
    (first,) = run_crawl(cfg, sources=src, index=False, max_pages=4)
    assert "max_pages=4" in first.note and first.fetched <= 4
    (second,) = run_crawl(cfg, sources=src, index=False)
    assert second.resumed  # the unfinished run's frontier is picked up
    assert len(_docs(cfg, "joomla")) == len(answers("joomla")["documents"])


def test_every_repeats_runs(servers, tmp_path):
    src = tmp_path / "s.toml"
    src.write_text(sources_toml({"oldtable": servers["oldtable"]}), encoding="utf-8")
    cfg = load_config(home=str(tmp_path))
    seen = []
    run_every(cfg, 0.0, sources=src, index=False, runs=2, on_run=seen.append)
    assert len(seen) == 2
    assert seen[0][0].added == len(answers("oldtable")["documents"])
    assert seen[1][0].added == 0 and seen[1][0].not_modified >= seen[0][0].added


@pytest.mark.slow  # runs the crawl CLI against live servers (~40 s under load)
def test_bare_site_url_makes_a_saved_incremental_source(servers, tmp_path):
    cfg = load_config(home=str(tmp_path))
    url = servers["oldtable"].base + "/"
    (rep,) = run_crawl(cfg, [url], index=False)
    assert rep.source == "127_0_0_1_" + str(servers["oldtable"].port)
    assert rep.added == len(answers("oldtable")["documents"])
    saved = tomllib.loads((tmp_path / "sources.toml").read_text(encoding="utf-8"))
    assert saved["sources"][rep.source]["start_urls"] == [url]
    (again,) = run_crawl(cfg, [url], index=False)
    assert again.source == rep.source and again.added == 0 and again.not_modified > 0
    (by_name,) = run_crawl(cfg, [rep.source], index=False)  # the saved name works too
    assert by_name.added == 0


def test_crawl_status_cli_lists_error_reasons(zero):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    cfg, *_ = zero
    r = subprocess.run([sys.executable, "-m", "cli", "crawl", "--status"], cwd=ROOT,
                       env=dict(os.environ, KM_SEARCH_HOME=str(cfg.home_path)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for name in (*TUNED, "traps"):
        assert f"{name}:" in r.stdout
    assert "forbidden by robots.txt" in r.stdout and "redirect loop" in r.stdout


def test_crawl_report_cli(zero, tmp_path):
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    cfg, *_ = zero
    key = tmp_path / "key.json"
    key.write_text(json.dumps(_key("joomla"), ensure_ascii=False), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "cli", "crawl", "joomla", "--report", str(key)],
                       cwd=ROOT, env=dict(os.environ, KM_SEARCH_HOME=str(cfg.home_path)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "| joomla |" in r.stdout and "11/11" in r.stdout


@pytest.mark.slow
def test_each_source_is_indexed_when_it_finishes(servers, tmp_path, embedder):
    """The first source is searchable before the second one starts."""
    from tests.conftest import make_config
    from km_search.search import Searcher

    src = tmp_path / "s.toml"
    src.write_text(sources_toml({"oldtable": servers["oldtable"], "joomla": servers["joomla"]}),
                   encoding="utf-8")
    cfg = make_config(tmp_path / "home")
    hits_when_second_started = []

    def progress(url, done, total):
        if servers["joomla"].base in url and not hits_when_second_started:
            s = Searcher(cfg, embedder)
            hits_when_second_started.append(s.search("ภัยแล้ง", k=3, mode="bm25"))

    reports = run_crawl(cfg, sources=src, embedder=embedder, progress=progress)
    assert [r.indexed for r in reports] == [True, True]
    assert any("ภัยแล้ง" in h.title for h in hits_when_second_started[0])
    hit = Searcher(cfg, embedder).search("กองทุนหมู่บ้าน", k=1, mode="bm25")[0]
    assert hit.url.startswith(servers["joomla"].base) and hit.published == "2016-01-08"


def test_rate_limits_per_host(servers, tmp_path):
    """[rate_limits] holds back requests to its host; a host without one is not held back."""
    src = tmp_path / "s.toml"
    limited, free = servers["oldtable"], servers["thaigov"]
    src.write_text(f'''[rate_limits]
"{limited.host}" = 0.3

[sources.limited]
start_urls = ["{limited.base}/"]
delay = 0.0

[sources.free]
start_urls = ["{free.base}/news/index"]
delay = 0.0
''', encoding="utf-8")
    srcs = load_sources(src)
    assert srcs.delay_for(limited.host, srcs.sources["limited"]) == 0.3
    fetcher = Fetcher(srcs)
    try:
        run_crawl(load_config(home=str(tmp_path)), sources=srcs, index=False, fetcher=fetcher)
    finally:
        fetcher.close()
    sent = fetcher.sent[limited.host]
    assert len(sent) >= 10
    assert min(b - a for a, b in zip(sent, sent[1:])) >= 0.3  # never closer than the limit
    assert srcs.delay_for(free.host, srcs.sources["free"]) == 0.0


@pytest.mark.slow  # a real CLI process at the default per-host delay: ~25 s of polite waiting
def test_crawl_site_url_on_the_cli(servers, tmp_path):
    """`km-search crawl https://site/` with no sources file and no selectors."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = dict(os.environ, KM_SEARCH_HOME=str(tmp_path))
    cmd = [sys.executable, "-m", "cli", "crawl", servers["oldtable"].base + "/", "--no-index"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    name = "127_0_0_1_" + str(servers["oldtable"].port)
    assert f"{name}: fetched" in r.stdout and "+6 " in r.stdout  # the six news pages
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0 and "+0 " in again.stdout and "unchanged 0," not in again.stdout

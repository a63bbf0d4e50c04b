"""The chat page in real headless Chromium (Debian's package) driven by Playwright.

Run with ``pytest -m browser``; skipped when Playwright or a Chromium binary is missing.
Chromium comes from ``KM_SEARCH_CHROMIUM`` or /usr/bin/chromium (here Playwright's own
download cannot reach its servers); elsewhere, after ``playwright install chromium``,
Playwright's bundled browser is used. Screenshots go to a temporary folder
(KM_SEARCH_ARTIFACTS=DIR keeps them).
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from bench.loadtest import free_port
from conftest import make_config, strict_skip

pytestmark = [pytest.mark.browser, pytest.mark.slow]
try:
    import playwright.sync_api as playwright_api
except ImportError:
    strict_skip("playwright is not installed (pip install -e '.[test]')", module=True)

KK = "6fcee9b62a8409b7"
if os.environ.get("KM_SEARCH_ARTIFACTS"):
    ARTIFACTS = Path(os.environ["KM_SEARCH_ARTIFACTS"])
else:
    ARTIFACTS = Path(tempfile.mkdtemp(prefix="km-browser-"))
    atexit.register(shutil.rmtree, ARTIFACTS, True)
CHROMIUM = os.environ.get("KM_SEARCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def server(seed_home, embedder, tmp_path_factory):
    import uvicorn

    from api import create_app

    home = tmp_path_factory.mktemp("browserhome") / "home"
    shutil.copytree(seed_home, home, symlinks=True)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(make_config(home), embedder), host="127.0.0.1",
                                        port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    deadline = time.time() + 30
    while not srv.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    th.join(10)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        kw = {"args": ARGS}
        if Path(CHROMIUM).exists():
            kw["executable_path"] = CHROMIUM
        try:
            b = p.chromium.launch(**kw)
        except Exception as e:  # no browser at all on this machine
            strict_skip(f"no Chromium to drive: {str(e).splitlines()[0]}")
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    # bypass_csp: the page's own escaping must stop XSS, not just the CSP header
    ctx = browser.new_context(accept_downloads=True, locale="th-TH", bypass_csp=True,
                              viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server + "/")
    yield pg
    ctx.close()
    assert not errors, errors


def _ask(page, question: str, n: int):
    page.fill("#q", question)
    page.press("#q", "Enter")  # keyboard: Enter sends
    ans = page.locator("[data-testid=answer]").nth(n - 1)
    ans.wait_for(timeout=30_000)
    return ans


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_thai_and_english_questions_answer_with_a_citation_to_khon_kaen(page, server):
    ans = _ask(page, "ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร", 1)
    chip = ans.locator("a.chip").first
    assert chip.text_content() == "1" and chip.get_attribute("data-doc") == KK
    assert chip.get_attribute("href").startswith(f"/documents/{KK}?passage=")
    assert "ขอนแก่นศึกษา" in ans.text_content()
    card = page.locator(".card").first
    assert card.get_attribute("data-doc") == KK
    assert "8 ธันวาคม พ.ศ. 2564" in card.text_content() and "2021-12-08" in card.text_content()
    assert card.locator("mark").count() > 0
    _shot(page, "browser-thai-answer.png")

    ans2 = _ask(page, "success factors for Khon Kaen Study", 2)
    assert ans2.locator("a.chip").first.get_attribute("data-doc") == KK

    with page.context.expect_page() as popup:  # the chip opens the cited passage
        chip.click()
    doc = popup.value
    doc.wait_for_load_state()
    assert "ขอนแก่นศึกษา" in doc.locator("#passage").text_content()

    ans.locator("button.up").click()  # thumbs up is stored
    page.wait_for_selector("[data-testid=answer] button.up.voted")


def test_date_filter_language_switch_export_and_no_xss(page, server, tmp_path):
    page.click("#filters summary")
    page.fill("#date_to", "2021-01-01")
    _ask(page, "แผนเพิ่มประสิทธิภาพ", 1)
    docs = {c.get_attribute("data-doc") for c in page.locator(".card").all()}
    assert docs == {"7b7b360df6402293"}  # the only seed before 2021
    assert "2563" in page.locator(".card").first.text_content()
    _shot(page, "browser-date-filter.png")

    page.click("#lang")
    assert page.locator("header h1").text_content() == "Public-sector knowledge search"
    assert page.evaluate("document.documentElement.lang") == "en"
    assert "B.E. 2563" in page.locator(".card").first.text_content()
    _shot(page, "browser-english-ui.png")

    page.fill("#date_to", "")
    _ask(page, "ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร", 2)
    page.locator(".card input.pick").first.check()
    with page.expect_download() as dl:
        page.click("#export-md")
    md = Path(dl.value.path()).read_text(encoding="utf-8")
    assert dl.value.suggested_filename.endswith(".md")
    assert "ขอนแก่นศึกษา" in md and "[1]" in md and f"/documents/{KK}" in md
    with page.expect_download() as dl:
        page.click("#export-docx")
    assert dl.value.suggested_filename.endswith(".docx")
    import docx
    text = "\n".join(p.text for p in docx.Document(dl.value.path()).paragraphs)
    assert "ขอนแก่นศึกษา" in text

    evil = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    _ask(page, evil, 3)
    assert page.locator(".user").nth(2).text_content() == evil
    assert page.evaluate("window.__xss") is None
    page.click("#lang")  # back to Thai
    assert page.locator("header h1").text_content() == "ค้นหาความรู้ภาครัฐ"


def test_facets_lesson_card_and_case_comparison(page, server):
    _ask(page, "ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร", 1)
    facets = page.locator("[data-testid=facets]").first
    assert "ขอนแก่น" in facets.locator("[data-facet=province]").text_content()
    assert "2565" in facets.locator("[data-facet=fiscal_year]").text_content()
    facets.locator("[data-facet=province] button.fval", has_text="พังงา").click()
    assert page.locator("#province").input_value() == "พังงา"  # a facet value sets the filter
    page.fill("#date_to", "")
    page.select_option("#province", "")
    card = page.locator(f".card[data-doc='{KK}']").first
    card.locator("button.show-lesson").click()
    lesson = card.locator("[data-testid=lesson]")
    lesson.wait_for()
    assert "ขอนแก่นศึกษา" in lesson.text_content()
    factors = lesson.locator("[data-field=success_factors] li")
    assert factors.count() >= 1 and factors.first.get_attribute("title")  # cited sentence
    _shot(page, "browser-lesson.png")
    for c in page.locator(".card").all()[:3]:
        c.locator("input.pick").check()
    with page.expect_download() as dl:
        page.click("#compare")
    import docx
    d = docx.Document(dl.value.path())
    assert "ขอนแก่นศึกษา" in "\n".join(p.text for p in d.paragraphs) + "\n".join(
        cell.text for t in d.tables for row in t.rows for cell in row.cells)

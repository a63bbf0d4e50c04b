"""The chat page in real headless Chromium (Debian's package) driven by Playwright.

Run with ``pytest -m browser``; skipped when Playwright or a Chromium binary is missing.
Chromium comes from ``KM_SEARCH_CHROMIUM`` or /usr/bin/chromium (here Playwright's own
download cannot reach its servers); elsewhere, after ``playwright install chromium``,
Playwright's bundled browser is used. Screenshots go to a temporary folder, or to
``KM_SEARCH_SCREENSHOTS`` when set (that is how docs/screenshots/ was made).
"""
from __future__ import annotations

import re

import os
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from bench.loadtest import free_port
from tests.conftest import make_config, strict_skip

pytestmark = [pytest.mark.browser, pytest.mark.slow]
try:
    import playwright.sync_api as playwright_api
except ImportError:
    strict_skip("playwright is not installed (pip install -e '.[test]')", module=True)

KK = "6fcee9b62a8409b7"  # the seed about Khon Kaen and Phang Nga
KK_Q = "ปัจจัยความสำเร็จของขอนแก่นศึกษาคืออะไร"
CHROMIUM = os.environ.get("KM_SEARCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1200, "height": 900}
PHONE = {"width": 390, "height": 844}


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


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    d = os.environ.get("KM_SEARCH_SCREENSHOTS")
    if d:
        Path(d).mkdir(parents=True, exist_ok=True)
        return Path(d)
    return tmp_path_factory.mktemp("screenshots")


def _context(browser, viewport=DESKTOP, **kw):
    # bypass_csp: the page's own escaping must stop XSS, not just the CSP header (and
    # axe-core is injected as a script)
    phone = viewport == PHONE
    return browser.new_context(accept_downloads=True, locale="th-TH", bypass_csp=True,
                               viewport=viewport, is_mobile=phone, has_touch=phone, **kw)


def _open(ctx, url):
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(url)
    return pg, errors


@pytest.fixture
def page(browser, server):
    ctx = _context(browser)
    pg, errors = _open(ctx, server + "/")
    yield pg
    ctx.close()
    assert not errors, errors


@pytest.fixture
def phone(browser, server):
    ctx = _context(browser, PHONE)
    pg, errors = _open(ctx, server + "/")
    yield pg
    ctx.close()
    assert not errors, errors


def _done(page, n: int):
    """Wait until n questions are asked and none is still running."""
    page.locator("section.turn").nth(n - 1).wait_for(timeout=30_000)
    page.wait_for_function("() => !document.querySelector('[aria-busy=true]')", timeout=60_000)


def _ask(page, question: str, n: int):
    page.fill("#q", question)
    page.press("#q", "Enter")  # keyboard: Enter sends
    _done(page, n)
    return page.locator("section.turn").nth(n - 1).locator("[data-testid=answer]")


def _axe(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    res = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} @ {[n['target'] for n in v['nodes'][:3]]}"
            for v in res.response["violations"] if v["impact"] in ("serious", "critical")]


def _assert_answer_in_view(page, n: int):
    """The start of the n-th answer (its question and first lines) is inside the viewport."""
    vh = page.viewport_size["height"]
    turn = page.locator("section.turn").nth(n - 1)
    q = turn.locator("h2.user").bounding_box()
    ans = turn.locator("[data-testid=answer]").bounding_box()
    assert 0 <= q["y"] < vh / 3, f"question {n} at y={q['y']} (viewport {vh})"
    assert 0 <= ans["y"] < vh - 100, f"answer {n} starts at y={ans['y']} (viewport {vh})"


# -- answers, citations, sources -------------------------------------------------------------
def test_publisher_page_is_linked_only_for_http_urls(page):
    import json

    def with_urls(route):  # the real answer, with publisher URLs as a crawled document has
        out = route.fetch().json()
        out["hits"][0]["url"] = "https://www.opdc.go.th/content/example"
        out["hits"][1]["url"] = "javascript:alert(1)"
        out["citations"][0]["url"] = out["hits"][0]["url"]
        route.fulfill(status=200, content_type="application/json", body=json.dumps(out))
    page.route("**/chat", with_urls)
    ans = _ask(page, KK_Q, 1)
    cards = page.locator(".card")
    assert cards.nth(0).locator("a.orig").get_attribute("href") == "https://www.opdc.go.th/content/example"
    assert cards.nth(1).locator("a.orig").count() == 0
    assert ans.locator(".sources a.orig").first.get_attribute("href").startswith("https://www.opdc.go.th/")
    assert page.locator("a[href^='javascript']").count() == 0


def test_thai_and_english_questions_answer_with_citation_chips_and_previews(page, shots):
    ans = _ask(page, KK_Q, 1)
    chip = ans.locator("a.chip").first
    assert chip.text_content() == "1" and chip.get_attribute("data-doc") == KK
    assert chip.get_attribute("href").startswith(f"/documents/{KK}?passage=")
    assert "ขอนแก่นศึกษา" in ans.text_content()
    # one chip per source, in order, each with its own accessible name
    nums = [c.text_content() for c in ans.locator("a.chip").all()]
    assert nums == [str(i) for i in range(1, len(nums) + 1)], nums
    names = [c.get_attribute("aria-label") for c in ans.locator("a.chip").all()]
    assert len(set(names)) == len(names), names
    for i, (n, c) in enumerate(zip(names, ans.locator("a.chip").all()), 1):
        # "source i: <its document's title>", the title of the document the chip opens
        assert n.startswith(f"แหล่งอ้างอิงที่ {i}: ") and len(n) > len(f"แหล่งอ้างอิงที่ {i}: ") + 10, n
        assert c.get_attribute("href").startswith(f"/documents/{c.get_attribute('data-doc')}?")
    # hovering (or focusing) the chip previews the cited sentence
    tip = ans.locator(".cite .tip").first
    assert not tip.is_visible()
    chip.focus()
    assert tip.is_visible()
    # the preview quotes the cited sentence (long ones shortened in the middle): every quoted
    # piece is text of the answer it cites
    pieces = [p.strip() for p in re.split(r"…|\.\.\.", tip.locator("q").text_content()) if len(p.strip()) > 8]
    assert pieces and all(p in ans.text_content() for p in pieces), pieces
    card = page.locator(".card").first
    assert card.get_attribute("data-doc") == KK
    assert "8 ธันวาคม พ.ศ. 2564" in card.text_content() and "2021-12-08" in card.text_content()
    assert card.locator("mark").count() > 0
    assert card.locator("a.orig").count() == 0  # the seeds have no publisher URL: no link
    page.screenshot(path=str(shots / "desktop-answer.png"))

    ans2 = _ask(page, "success factors for Khon Kaen Study", 2)
    assert ans2.locator("a.chip").first.get_attribute("data-doc") == KK

    with page.context.expect_page() as popup:  # the chip opens the cited passage
        chip.click()
    doc = popup.value
    doc.wait_for_load_state()
    assert "ขอนแก่นศึกษา" in doc.locator("#passage").text_content()

    ans.locator("button.up").click()  # thumbs up is stored
    page.wait_for_selector("[data-testid=answer] button.up.voted")


# -- scrolling ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_each_answer_is_scrolled_into_view_from_its_start(browser, server, viewport):
    ctx = _context(browser, viewport)
    pg, errors = _open(ctx, server + "/")
    try:
        for n, q in enumerate([KK_Q, "ผลการดำเนินงานจังหวัดนครราชสีมา", "แผนเพิ่มประสิทธิภาพองค์การ"], 1):
            _ask(pg, q, n)
            _assert_answer_in_view(pg, n)
        assert pg.evaluate("scrollY") > 0  # it really scrolled (three answers with cards)
    finally:
        ctx.close()
    assert not errors, errors


# -- conversations: history, share link, state across re-render ----------------------------------
def test_history_survives_reload_rename_delete_and_new_chat(page, server):
    _ask(page, KK_Q, 1)
    _ask(page, "แผนเพิ่มประสิทธิภาพองค์การ", 2)
    page.locator(".card input.pick").first.check()
    page.reload()
    page.locator("section.turn").nth(1).wait_for()
    assert [h.text_content() for h in page.locator("h2.user").all()] == [KK_Q, "แผนเพิ่มประสิทธิภาพองค์การ"]
    assert page.locator("section.turn").first.locator("a.chip").first.get_attribute("data-doc") == KK
    assert page.locator(".card input.pick").first.is_checked()  # selection restored
    item = page.locator("#history li.current")
    assert KK_Q in item.text_content()
    item.locator("button.rename").click()
    page.fill("#history .rename-input", "ขอนแก่น")
    page.press("#history .rename-input", "Enter")
    assert page.locator("#history li.current button.open").text_content() == "ขอนแก่น"
    page.click("#new-chat")
    assert page.locator(".welcome").is_visible() and page.locator("section.turn").count() == 0
    assert page.locator("#export-md").is_disabled() and page.locator("#compare").is_disabled()
    _ask(page, "แผนเพิ่มประสิทธิภาพองค์การ", 1)
    assert page.locator("#history li button.open").count() == 2
    page.reload()
    page.locator("#history li button.open", has_text="ขอนแก่น").click()  # back to the first one
    assert page.locator("h2.user").count() == 2
    page.locator("#history li.current button.delete").click()
    assert page.locator("#history li button.open", has_text="ขอนแก่น").count() == 0
    page.reload()
    assert page.locator("#history li button.open", has_text="ขอนแก่น").count() == 0


def test_share_link_restores_the_whole_conversation(page, browser, server):
    _ask(page, KK_Q, 1)
    _ask(page, "แผนเพิ่มประสิทธิภาพองค์การ", 2)
    url = page.locator("section.turn").nth(1).locator("button.share").get_attribute("data-url")
    assert urlparse(url).netloc == urlparse(server).netloc
    ctx = _context(browser)  # another person: empty localStorage
    other, errors = _open(ctx, url)
    try:
        _done(other, 2)
        assert [h.text_content() for h in other.locator("h2.user").all()] == [
            KK_Q, "แผนเพิ่มประสิทธิภาพองค์การ"]
        first = other.locator("section.turn").first.locator("[data-testid=answer]")
        assert first.locator("a.chip").first.get_attribute("data-doc") == KK  # recomputed
        assert urlparse(other.url).query == ""  # a reload does not ask again
        other.reload()
        assert other.locator("h2.user").count() == 2
    finally:
        ctx.close()
    assert not errors, errors


def test_state_survives_language_toggle_and_dates_filter_in_buddhist_era(page, tmp_path):
    page.click("#filters summary")
    page.fill("#date_to", "1/1/2564")  # B.E. 2564 = 2021
    page.press("#date_to", "Tab")
    assert "1 ม.ค. 2564" in page.locator("#date_to-hint").text_content()
    _ask(page, "แผนเพิ่มประสิทธิภาพ", 1)
    docs = {c.get_attribute("data-doc") for c in page.locator(".card").all()}
    assert docs == {"7b7b360df6402293"}  # the only seed before 2021
    assert "2563" in page.locator(".card").first.text_content()
    assert page.locator("#chips .fchip").first.text_content().startswith("ถึงวันที่: 1 ม.ค. 2564")
    page.fill("#date_to", "31/2/2564")  # no such day: refused, nothing sent
    page.press("#q", "Enter")
    assert page.locator("#date_to").get_attribute("aria-invalid") == "true"
    page.fill("#date_to", "")
    page.press("#date_to", "Tab")

    ans = _ask(page, KK_Q, 2)
    card = page.locator("section.turn").nth(1).locator(f".card[data-doc='{KK}']").first
    card.locator("input.pick").check()
    card.locator("button.show-lesson").click()
    card.locator("[data-testid=lesson]").wait_for()
    ans.locator("button.up").click()
    page.wait_for_selector("section.turn >> nth=1 >> [data-testid=answer] button.up.voted")

    page.click("#lang")
    assert page.locator("header h1").text_content() == "Public-sector knowledge search"
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("#lang").text_content() == "ภาษาไทย"
    assert "B.E. 2563" in page.locator(".card").first.text_content()
    card = page.locator("section.turn").nth(1).locator(f".card[data-doc='{KK}']").first
    assert card.locator("input.pick").is_checked()  # selection, lesson and thumbs kept
    card.locator("[data-testid=lesson]").wait_for()
    assert "Success factors" in card.locator("[data-testid=lesson]").text_content()
    assert page.locator("section.turn").nth(1).locator("button.up.voted").count() == 1

    with page.expect_download() as dl:
        page.click("#export-md")
    md = Path(dl.value.path()).read_text(encoding="utf-8")
    assert dl.value.suggested_filename.endswith(".md")
    assert "ขอนแก่นศึกษา" in md and "[1]" in md and f"/documents/{KK}" in md
    with page.expect_download() as dl:
        page.click("#export-docx")
    import docx
    text = "\n".join(p.text for p in docx.Document(dl.value.path()).paragraphs)
    assert "ขอนแก่นศึกษา" in text

    evil = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    _ask(page, evil, 3)
    assert page.locator("h2.user").nth(2).text_content() == evil
    assert page.evaluate("window.__xss") is None
    page.click("#lang")  # back to Thai
    assert page.locator("header h1").text_content() == "ค้นหาความรู้ภาครัฐ"


# -- onboarding, refusals ---------------------------------------------------------------------------
def test_first_screen_says_what_the_collection_holds_and_examples_answer(page):
    welcome = page.locator(".welcome")
    page.locator(".welcome .examples li").first.wait_for()
    text = welcome.text_content()
    assert "เอกสาร 5 เรื่อง" in text and "2563" in text and "2566" in text  # counts, B.E. range
    assert "ขอนแก่น" in text and "สำนักงาน ก.พ.ร." in text  # provinces, publishers
    examples = [b.text_content() for b in welcome.locator("button.example").all()]
    assert 4 <= len(examples) <= 6 and all(any("\u0e00" <= ch <= "\u0e7f" for ch in q) for q in examples)
    assert page.locator("#export-md").is_disabled() and page.locator("#export-docx").is_disabled()
    assert page.locator("#compare").is_disabled()
    page.click("#lang")
    page.wait_for_function("() => [...document.querySelectorAll('.example')].every("
                           "b => /^(What|Which|How)/.test(b.textContent))")
    page.click("#lang")
    page.locator(".welcome button.example").first.wait_for()
    page.locator(".welcome button.example").first.click()
    _done(page, 1)
    ans = page.locator("[data-testid=answer]").first
    assert ans.locator("a.chip").count() >= 1  # an example from the cards is answerable
    assert not page.locator("#export-md").is_disabled()


def test_refusal_explains_the_collection_and_shows_no_cards_or_actions(page):
    ans = _ask(page, "ราคาทองคำวันนี้", 1)
    assert "refusal" in ans.get_attribute("class")
    assert "ยังไม่มีข้อมูล" in ans.text_content() and "เอกสาร 5 เรื่อง" in ans.text_content()
    assert ans.locator("button.example").count() >= 1  # questions it can answer
    assert page.locator(".card").count() == 0 and page.locator("[data-testid=facets]").count() == 0
    assert ans.locator("button.copy, button.share, button.up, button.down").count() == 0
    assert page.locator("#export-md").is_disabled()
    ans.locator("button.example").first.click()
    _done(page, 2)
    assert page.locator("section.turn").nth(1).locator("a.chip").count() >= 1


# -- progress and errors ----------------------------------------------------------------------------
def test_busy_state_stop_and_error_with_retry(page):
    held = []
    page.route("**/chat", lambda route: held.append(route))  # the server "never" answers
    page.fill("#q", KK_Q)
    page.press("#q", "Enter")
    page.wait_for_selector("#log[aria-busy=true]")
    assert page.locator("#send").is_disabled() and page.locator("#stop").is_visible()
    assert page.locator("section.turn .turn-body[aria-busy=true]").count() == 1
    page.click("#stop")
    err = page.locator("[data-testid=error]")
    err.wait_for()
    assert err.text_content().startswith("หยุดการค้นหาแล้ว")
    assert not page.locator("#send").is_disabled()
    page.unroute("**/chat")

    page.route("**/chat", lambda route: route.abort())  # the network is down
    err.locator("button.retry").click()
    page.wait_for_function("() => /เชื่อมต่อ/.test((document.querySelector('[data-testid=error]') || {}).textContent)")
    msg = page.locator("[data-testid=error]").text_content()
    assert "เชื่อมต่อเซิร์ฟเวอร์ไม่ได้" in msg and "Failed to fetch" not in msg
    page.unroute("**/chat")

    page.route("**/chat", lambda route: route.fulfill(status=500, body="Internal Server Error"))
    page.locator("button.retry").click()
    page.wait_for_function("() => /ขัดข้อง/.test((document.querySelector('[data-testid=error]') || {}).textContent)")
    assert "Internal Server Error" not in page.locator("#log").text_content()
    page.unroute("**/chat")
    page.locator("button.retry").click()
    _done(page, 1)
    assert page.locator("[data-testid=answer] a.chip").first.get_attribute("data-doc") == KK
    assert len(held) == 1  # the stopped request was never answered


# -- facets -----------------------------------------------------------------------------------------
def test_facet_refinement_reruns_the_search_with_translated_labels(page):
    _ask(page, KK_Q, 1)
    facets = page.locator("[data-testid=facets]").first
    assert "ขอนแก่น" in facets.locator("[data-facet=province]").text_content()
    assert "2565" in facets.locator("[data-facet=fiscal_year]").text_content()
    factors = facets.locator("[data-facet=factor]").text_content()
    assert "clear_goals" not in factors and "citizen_needs" not in factors
    assert "เป้าหมาย/นโยบายชัดเจน" in factors
    # clickable values are buttons, the others plain text that looks different
    assert facets.locator("[data-facet=factor] button").count() == 0
    style = lambda loc: loc.evaluate("e => getComputedStyle(e).borderStyle + getComputedStyle(e).textDecorationLine")
    assert style(facets.locator("[data-facet=province] button.fval").first) != style(
        facets.locator("[data-facet=factor] .fval").first)
    before = {c.get_attribute("data-doc") for c in page.locator(".card").all()}
    assert len(before) > 1
    facets.locator("[data-facet=province] button.fval", has_text="พังงา").click()
    _done(page, 1)
    assert page.locator("#province").input_value() == "พังงา"
    docs = {c.get_attribute("data-doc") for c in page.locator(".card").all()}
    assert docs == {KK}  # the only seed about Phang Nga: the search ran again with the filter
    chip = page.locator("#chips .fchip", has_text="พังงา")
    assert chip.is_visible()  # the filter shows while the filter panel is closed,
    assert page.evaluate("scrollY") > 0 and 0 <= chip.bounding_box()["y"] < 100  # and on top
    _assert_answer_in_view(page, 1)
    chip.locator("button.x").click()
    _done(page, 1)
    assert {c.get_attribute("data-doc") for c in page.locator(".card").all()} == before
    page.click("#lang")
    assert "Clear goals and policy" in page.locator("[data-facet=factor]").text_content()
    page.click("#lang")


def test_lesson_card_and_case_comparison(page):
    _ask(page, KK_Q, 1)
    card = page.locator(f".card[data-doc='{KK}']").first
    card.locator("button.show-lesson").click()
    lesson = card.locator("[data-testid=lesson]")
    lesson.wait_for()
    assert "ขอนแก่นศึกษา" in lesson.text_content()
    factors = lesson.locator("[data-field=success_factors] li")
    assert factors.count() >= 1 and factors.first.get_attribute("title")  # cited sentence
    assert page.locator("#compare").is_disabled()
    for c in page.locator(".card").all()[:3]:
        c.locator("input.pick").check()
    assert not page.locator("#compare").is_disabled()
    with page.expect_download() as dl:
        page.click("#compare")
    import docx
    d = docx.Document(dl.value.path())
    assert "ขอนแก่นศึกษา" in "\n".join(p.text for p in d.paragraphs) + "\n".join(
        cell.text for t in d.tables for row in t.rows for cell in row.cells)


def _history_takes_questions(server: str) -> bool:
    """Does POST /chat take ``history`` as earlier questions (strings), as issue 11 does?"""
    import httpx

    items = httpx.get(server + "/openapi.json").json()["components"]["schemas"]["ChatIn"][
        "properties"]["history"].get("items", {})
    return any(k.get("type") == "string" for k in [items, *items.get("anyOf", [])])


# -- the page's side of the understood/history/rewritten contract ------------------------------
def test_understood_chips_remove_with_ignore_understood_and_rewritten_is_shown(page, server):
    import json

    takes_questions = _history_takes_questions(server)
    sent: list[dict] = []

    def contract(route):  # the real answer, plus what issue 11's server adds
        body = json.loads(route.request.post_data)
        sent.append(body)
        out = route.fetch().json()
        ignored = body.get("ignore_understood", [])
        if "province:ขอนแก่น" not in ignored:
            out["understood"] = [{"kind": "province", "value": "ขอนแก่น", "text": "ขอนแก่น",
                                  "mode": "filter", "label": "จังหวัดขอนแก่น"}]
        if body.get("history") or len(sent) > 1:
            out["rewritten"] = "ปัจจัยความสำเร็จของจังหวัดขอนแก่น"
        route.fulfill(status=200, content_type="application/json", body=json.dumps(out))
    page.route("**/chat", contract)
    _ask(page, KK_Q, 1)
    chip = page.locator("#chips .fchip.understood")
    assert chip.text_content().startswith("จังหวัดขอนแก่น (อ่านจากคำถาม)")
    _ask(page, "แล้วมีอะไรอีก", 2)
    assert sent[1].get("history", [KK_Q]) == [KK_Q]  # earlier questions, when the server takes them
    assert ("history" in sent[1]) == takes_questions
    shown = page.locator("section.turn").nth(1).locator("[data-testid=rewritten]")
    assert shown.text_content() == "ค้นหา: ปัจจัยความสำเร็จของจังหวัดขอนแก่น"
    page.click("#lang")
    assert shown.text_content().startswith("Searched: ")
    page.click("#lang")
    page.locator("#chips .fchip.understood button.x").click()  # remove: the search runs again
    _done(page, 2)
    assert sent[-1]["ignore_understood"] == ["province:ขอนแก่น"]
    assert page.locator("#chips .fchip.understood").count() == 0


# -- follow-up questions (issue 11's server side) -----------------------------------------------
def test_follow_up_question_is_rewritten_and_cites_phang_nga(page, server):
    import httpx

    assert _history_takes_questions(server)  # issue 11's contract: history as earlier questions
    _ask(page, "จังหวัดขอนแก่นทำอย่างไรจึงได้รางวัล PMQA 4.0", 1)
    ans = _ask(page, "แล้วพังงาล่ะ", 2)
    rewritten = page.locator("section.turn").nth(1).locator("[data-testid=rewritten]")
    assert rewritten.count() == 1 and "พังงา" in rewritten.text_content()
    assert rewritten.text_content().startswith("ค้นหา: ")
    cited = []  # the passages the chips point at, read from the document API
    for chip in ans.locator("a.chip").all():
        link = urlparse(chip.get_attribute("href"))
        doc = httpx.get(server + link.path, headers={"Accept": "application/json"}).json()
        pid = int(dict(x.split("=") for x in link.query.split("&"))["passage"])
        p = next(p for p in doc["passages"] if p["chunk_id"] == pid)
        cited.append(doc["body"][p["start"]:p["end"]])
    assert any("พังงา" in text for text in cited), cited


# -- phone ---------------------------------------------------------------------------------------------
def test_phone_layout_has_44px_targets_unwrapped_labels_and_collapsed_facets(phone, shots):
    _ask(phone, KK_Q, 1)
    facets = phone.locator("[data-testid=facets]").first
    assert facets.get_attribute("open") is None  # collapsed on a phone
    assert not phone.locator("#sidebar").is_visible()
    small, wrapped = [], []
    for loc in phone.locator("button:visible, a.chip:visible, label.pickl:visible, summary:visible").all():
        b = loc.bounding_box()
        if b and (b["height"] < 44 or b["width"] < 44):
            small.append((loc.evaluate("e => e.outerHTML.slice(0, 80)"), round(b["width"]), round(b["height"])))
    for loc in phone.locator(".actions button, .card .row button, #send").all():
        if loc.evaluate("e => getComputedStyle(e).whiteSpace") != "nowrap":
            wrapped.append(loc.text_content())
    assert not small, small
    assert not wrapped, wrapped
    _assert_answer_in_view(phone, 1)
    phone.screenshot(path=str(shots / "phone-answer.png"))
    phone.click("#menu")
    assert phone.locator("#sidebar").is_visible()
    assert phone.locator("#history li.current").text_content().startswith(KK_Q[:10])


# -- accessibility --------------------------------------------------------------------------------
def test_axe_reports_no_serious_or_critical_violations(page, phone):
    page.locator(".welcome .examples li").first.wait_for()
    found = {"welcome": _axe(page)}
    assert page.locator("#lang").evaluate("e => e.textContent") == "English"
    assert page.locator("#lang").get_attribute("aria-label") is None  # name = its text
    assert page.locator("label[for=q]").count() == 1
    _ask(page, KK_Q, 1)
    _ask(page, "ราคาทองคำวันนี้", 2)
    card = page.locator(f".card[data-doc='{KK}']").first
    card.locator("button.show-lesson").click()
    card.locator("[data-testid=lesson]").wait_for()
    page.click("#filters summary")
    found["answered"] = _axe(page)
    levels = page.evaluate("[...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1])")
    assert levels[0] == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:])), levels
    live = page.locator("[aria-live]")
    assert live.count() == 1 and live.first.evaluate("e => e.closest('section').dataset.turn") == "1"
    names = [c.get_attribute("aria-label") for c in page.locator("input.pick").all()]
    assert len(names) == len(set(names))
    _ask(phone, KK_Q, 1)
    found["phone"] = _axe(phone)
    assert not any(found.values()), found


# -- offline API docs ---------------------------------------------------------------------------
def test_api_docs_render_with_the_network_blocked(browser, server):
    ctx = _context(browser)
    host = urlparse(server).netloc
    blocked: list[tuple[str, str]] = []

    def gate(route):
        if urlparse(route.request.url).netloc == host:
            route.continue_()
        else:
            blocked.append((route.request.resource_type, route.request.url))
            route.abort()
    ctx.route("**/*", gate)
    pg, errors = _open(ctx, server + "/docs")
    try:
        pg.locator(".swagger-ui .info .title").wait_for(timeout=20_000)
        assert "km-search" in pg.locator(".swagger-ui .info .title").text_content()
        pg.locator(".opblock-summary-path", has_text="/chat").first.wait_for()
        assert not blocked, blocked  # Swagger UI asked for nothing outside this server
        pg.goto(server + "/redoc")
        pg.locator("h1", has_text="km-search").first.wait_for(timeout=20_000)
        # scripts, styles and the API description all came from this server; ReDoc's
        # own "made by" logo (an image from its CDN) is the only thing left out
        assert all(kind == "image" for kind, _ in blocked), blocked
    finally:
        ctx.close()
    assert not errors, errors

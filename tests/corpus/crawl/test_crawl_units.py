"""Crawler building blocks with hand-written expectations: Thai date forms, machine-readable
dates, URL canonical form, content sniffing, title choice, selector priority."""
from __future__ import annotations

from datetime import date

import pytest
from bs4 import BeautifulSoup

from corpus.crawl.config import Source, adhoc_source, source_name_for
from corpus.crawl.dates import first_date, machine_date, thai_dates
from corpus.crawl.extract import parse_page, sniff_type, strip_chrome
from corpus.crawl.fetch import retry_after
from corpus.crawl.urls import absolute, canonical


@pytest.mark.parametrize("text, iso", [
    ("วันที่ 15/03/2566", "2023-03-15"),           # day-first, B.E.
    ("08/01/2559", "2016-01-08"),
    ("15.03.66", "2023-03-15"),                    # short B.E. year
    ("2566-03-15", "2023-03-15"),                  # B.E. ISO-like, not C.E. 2566
    ("2023-03-15", "2023-03-15"),
    ("๑๕ มี.ค. ๒๕๖๖", "2023-03-15"),               # Thai digits and an abbreviated month
    ("๓๑/๑๒/๒๕๖๕", "2022-12-31"),
    ("สร้างเมื่อ วันพุธที่ 8 มีนาคม 2566", "2023-03-08"),
    ("posted 5 Sep 2023", "2023-09-05"),
])
def test_thai_date_forms(text, iso):
    assert first_date(text)[0] == iso


def test_dates_in_order_and_today_skipped():
    t = date.today()
    clock = f"{t.day}/{t.month:02d}/{t.year + 543}"
    assert first_date(f"{clock} ข่าว 15/03/2566")[0] == "2023-03-15"  # a header clock is not it
    assert [d[1] for d in thai_dates("จาก 1/12/2565 ถึง 20 เมษายน 2566")] == ["2022-12-01", "2023-04-20"]
    assert first_date("โทร 02-123-4567 เลขที่ 99/12") is None  # phone numbers and house numbers


def test_machine_readable_dates_first():
    meta = BeautifulSoup('<meta property="article:published_time" content="2023-03-15T09:00:00+07:00">'
                         '<p>1 มกราคม 2566</p>', "lxml")
    assert machine_date(meta)[0] == "2023-03-15"
    ld = BeautifulSoup('<script type="application/ld+json">{"@graph":[{"@type":"Article",'
                       '"datePublished":"2566-02-01"}]}</script>', "lxml")
    assert machine_date(ld)[0] == "2023-02-01"
    tm = BeautifulSoup('<time datetime="2022-10-05T10:00">5 ต.ค. 2565</time>', "lxml")
    assert machine_date(tm)[0] == "2022-10-05"


def test_canonical_urls():
    assert canonical("HTTP://WWW.Example.go.th:80/news/a.html?utm_source=fb&id=3&fbclid=xyz#top") == \
        "http://www.example.go.th/news/a.html?id=3"
    assert canonical("https://x.go.th:443") == "https://x.go.th/"
    assert canonical("https://x.go.th/a?page=2&_ga=1.2&gclid=9") == "https://x.go.th/a?page=2"
    assert absolute("https://x.go.th/news/", "../a?utm_medium=line") == "https://x.go.th/a"
    assert absolute("https://x.go.th/", "javascript:void(0)") is None
    assert absolute("https://x.go.th/", "mailto:a@b.c") is None


def test_sniff_by_content_not_url():
    assert sniff_type(b"%PDF-1.4 ...", "application/octet-stream", "", "https://x/download.php?file=a") == "pdf"
    assert sniff_type(b"<!doctype html><html>", "application/pdf", "", "https://x/a.pdf") == "html"
    assert sniff_type(b"\x00\x01", "application/octet-stream", 'attachment; filename="r.docx"',
                      "https://x/d.php") == "docx"  # says DOCX; the reader then checks it
    assert retry_after("3") == 3.0 and retry_after("") is None and retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait


def test_title_prefers_headline_over_site_name_and_section_labels():
    html = ('<html><head><title>เปิดศูนย์การเรียนรู้ชุมชน | กรมตัวอย่าง</title></head><body>'
            '<div class="header"><h1>กรมตัวอย่าง</h1></div><main><h2 class="section-title">ข่าวกิจกรรม</h2>'
            '<h2 class="entry-title">เปิดศูนย์การเรียนรู้ชุมชน</h2><p>วันที่ 15/03/2566</p>'
            f'<p>{"ศูนย์เรียนรู้แห่งใหม่เปิดให้บริการประชาชน " * 8}</p></main></body></html>')
    pg = parse_page(html, "https://x.go.th/news/1", Source(name="x"))
    assert pg.kind == "article" and pg.title == "เปิดศูนย์การเรียนรู้ชุมชน"
    assert pg.published == "2023-03-15"


def test_selector_list_is_a_priority_order_and_remove_adds():
    html = ('<html><body><div class="Circular"><h1>หัวข้อข่าวจริงของหน้า</h1><span class="date">8 มี.ค. 2566</span></div>'
            '<div class="promo">โฆษณาที่ต้องตัดทิ้ง</div><footer>ท้ายเว็บ</footer>'
            f'<div class="detail">{"เนื้อหาข่าว " * 40}</div></body></html>')
    src = Source(name="x", title="h1, .Circular", body=".detail", remove=[".promo"])
    pg = parse_page(html, "https://x.go.th/news/1", src, expect="article")
    assert pg.title == "หัวข้อข่าวจริงของหน้า"  # not ".Circular", which comes first in the page
    soup = BeautifulSoup(html, "lxml")
    strip_chrome(soup, src.remove)
    text = soup.get_text(" ")
    assert "โฆษณา" not in text and "ท้ายเว็บ" not in text  # the extra AND the default list


def test_adhoc_source_names():
    assert source_name_for("https://www.example.go.th/") == "example_go_th"
    src = adhoc_source("https://www.example.go.th/?utm_source=x")
    assert src.start_urls == ["https://www.example.go.th/"] and not src.title and not src.body
    with pytest.raises(ValueError):
        adhoc_source("ftp://x")


def test_month_word_before_the_month_name():
    assert first_date("วันที่ 5 เดือนกันยายน พ.ศ. 2566") == ("2023-09-05", "5 เดือนกันยายน พ.ศ. 2566")
    assert first_date("๕ เดือน ก.ย. ๒๕๖๖")[0] == "2023-09-05"


def test_links_to_non_pages_are_not_queued(tmp_path):
    from corpus.crawl.runner import _Crawl
    from corpus.crawl.state import CrawlState

    st = CrawlState(tmp_path / "c.db")
    try:
        src = Source(name="x", start_urls=["https://x.go.th/"])
        c = _Crawl(src, st, None, None, None, None)
        item = {"run_id": 1, "depth": 0, "hops": 0, "kind": "page"}
        kids = c._children(item, [["https://x.go.th/a.jpg", "page", ""], ["https://x.go.th/b.xlsx", "page", ""],
                                  ["https://x.go.th/news/1", "page", ""], ["https://y.go.th/news/2", "page", ""],
                                  ["https://x.go.th/f.pdf", "attachment", ""]])
        assert [k[0] for k in kids] == ["https://x.go.th/news/1", "https://x.go.th/f.pdf"]
    finally:
        st.close()


def test_rel_canonical_inside_the_site_only():
    body = f'<p>{"ข่าวประชาสัมพันธ์ของหน่วยงาน " * 12}</p><p>วันที่ 15/03/2566</p>'
    html = f'<html><head><link rel="canonical" href="/news/otop-fair/?utm_source=x"></head><body><h1>ข่าวงาน OTOP</h1>{body}</body></html>'
    pg = parse_page(html, "https://x.go.th/index.php?p=123&fbclid=1", Source(name="x"))
    assert pg.kind == "article" and pg.canonical == "https://x.go.th/news/otop-fair/"
    other = html.replace('href="/news/otop-fair/?utm_source=x"', 'href="https://mirror.example/news/1"')
    assert parse_page(other, "https://x.go.th/index.php?p=123", Source(name="x")).canonical is None

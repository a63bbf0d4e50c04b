"""What the first screen of the chat page says: the collection overview and the example
questions written from lesson cards (fast tier: the fake embedder's seed index)."""
from __future__ import annotations

import re

from tests.conftest import fake_config

THAI = re.compile("[\u0e00-\u0e7f]")


def test_overview_counts_publishers_provinces_and_dates_of_the_seed_index(fake_seed_home):
    from km_search.search import Searcher

    ov = Searcher(fake_config(fake_seed_home)).overview()
    assert ov.documents == 5
    assert sum(p["documents"] for p in ov.publishers) == 5  # every seed has a publisher
    names = [p["name"] for p in ov.provinces]
    assert names[0] == "ขอนแก่น" and {"พังงา", "นครราชสีมา"} <= set(names)  # most documents first
    assert (ov.date_min, ov.date_max) == ("2020-11-23", "2023-02-20")
    assert ov.sources == ["seed"]


def _cards():
    from corpus.seeds import bundled_seeds
    from km_search.lessons import extract_card

    return [extract_card(d) for d in bundled_seeds()]


def test_example_questions_come_from_the_cards_in_both_languages():
    from km_search.lessons import example_questions

    cards = _cards()
    th, en = example_questions(cards, "th", 6), example_questions(cards, "en", 6)
    assert len(th) == 6 and len(set(th)) == 6 and len(en) == 6
    assert all(THAI.search(q) for q in th)
    assert all(q.startswith("What ") and q.endswith("?") for q in en)
    names = {p.text for c in cards for p in c.programmes} | {p.text for c in cards for p in c.provinces}
    # each names a programme or province the cards hold
    assert all(any(n in q for n in names) for q in th + en), th + en
    # several kinds of question, not six times the same template
    assert len({q.split("ของ")[0][:8] for q in th}) >= 2
    # a Latin-script name is set off by spaces in Thai
    assert all(not re.search(r"[\u0e00-\u0e7f][A-Za-z]|[A-Za-z0-9][\u0e00-\u0e7f]", q) for q in th), th


def test_example_questions_skip_what_the_collection_would_refuse():
    from km_search.lessons import example_questions

    cards = _cards()
    asked: list[str] = []

    def answerable(q: str) -> bool:
        asked.append(q)
        return "ปัจจัยความสำเร็จ" not in q

    out = example_questions(cards, "th", 4, answerable=answerable)
    assert len(out) == 4 and not any("ปัจจัยความสำเร็จ" in q for q in out)
    assert any("ปัจจัยความสำเร็จ" in q for q in asked)  # they were candidates, then dropped


def test_stats_and_examples_endpoints(fake_work_home, fake_embedder):
    from fastapi.testclient import TestClient

    from api import create_app

    with TestClient(create_app(fake_config(fake_work_home), fake_embedder)) as c:
        col = c.get("/stats").json()["collection"]
        assert col["documents"] == 5 and col["date_min"] == "2020-11-23"
        assert c.get("/filters").json()["provinces"] == sorted(p["name"] for p in col["provinces"])
        for lang in ("th", "en"):
            qs = c.get("/examples", params={"lang": lang, "n": 5}).json()["questions"]
            assert 1 <= len(qs) <= 5
            for q in qs:  # every example is answered, not refused
                assert c.post("/chat", json={"question": q}).json()["found"], q
        assert c.get("/examples", params={"lang": "xx"}).status_code == 422
        assert c.get("/docs").status_code == 200 and "static-offline-docs" in c.get("/docs").text

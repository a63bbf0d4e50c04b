"""Follow-ups and query understanding through the real API on the seed index."""
from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from tests.conftest import fake_config, make_config

KK_Q = "จังหวัดขอนแก่นทำอย่างไรจึงได้รางวัล PMQA 4.0"


def _client(src, cfg_of, emb, tmp_path_factory):
    from api import create_app

    home = tmp_path_factory.mktemp("followup") / "home"
    shutil.copytree(src, home, symlinks=True)
    return TestClient(create_app(cfg_of(home), emb))


@pytest.fixture(scope="module")
def client(seed_home, embedder, tmp_path_factory):
    """The real model (slow tier)."""
    with _client(seed_home, make_config, embedder, tmp_path_factory) as c:
        yield c


@pytest.fixture(scope="module")
def fake_client(fake_seed_home, fake_embedder, tmp_path_factory):
    """The hashed-feature fake embedder: the fast tier, where BM25 carries the answer."""
    with _client(fake_seed_home, fake_config, fake_embedder, tmp_path_factory) as c:
        yield c


def _cited_texts(body: dict) -> list[str]:
    by_chunk = {h["chunk_id"]: h["text"] for h in body["hits"]}
    return [by_chunk.get(c["chunk_id"], "") for c in body["citations"]]


@pytest.mark.parametrize("history", [[KK_Q], [{"role": "user", "content": KK_Q},
                                              {"role": "assistant", "content": "..."}]])
def test_phang_nga_follow_up_is_rewritten_and_cites_phang_nga(client, history):
    first = client.post("/chat", json={"question": KK_Q}).json()
    assert first["rewritten"] is None
    assert {"kind": "province", "value": "ขอนแก่น", "text": "จังหวัดขอนแก่น", "mode": "filter",
            "label": "จังหวัดขอนแก่น"} in first["understood"]
    r = client.post("/chat", json={"question": "แล้วพังงาล่ะ", "history": history})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["question"] == "แล้วพังงาล่ะ"
    assert body["rewritten"] == "จังหวัดพังงาทำอย่างไรจึงได้รางวัล PMQA 4.0"
    assert body["found"], body["answer"]
    texts = _cited_texts(body)
    assert texts and "พังงา" in texts[0], texts


def test_phang_nga_follow_up_fast_tier(fake_client):
    body = fake_client.post("/chat", json={"question": "แล้วพังงาล่ะ", "history": [KK_Q]}).json()
    assert body["rewritten"] == "จังหวัดพังงาทำอย่างไรจึงได้รางวัล PMQA 4.0"
    assert body["found"] and "พังงา" in _cited_texts(body)[0]


def test_without_history_the_follow_up_is_searched_as_typed(client):
    body = client.post("/chat", json={"question": "แล้วพังงาล่ะ"}).json()
    assert body["rewritten"] is None


def test_search_returns_understood_and_a_removed_chip_drops_its_filter(client):
    q = "จังหวัดพังงา เครือข่ายภาคประชาชน"
    body = client.get("/search", params={"q": q, "k": 5}).json()
    prov = [u for u in body["understood"] if u["kind"] == "province"]
    assert prov == [{"kind": "province", "value": "พังงา", "text": "จังหวัดพังงา", "mode": "filter",
                     "label": "จังหวัดพังงา"}]
    assert body["hits"] and all("พังงา" in h["provinces"] for h in body["hits"])
    free = client.post("/search", json={"query": q, "k": 5,
                                        "ignore_understood": ["province:พังงา"]}).json()
    assert free["understood"] == []
    assert any("พังงา" not in h["provinces"] for h in free["hits"])


def test_a_filter_that_leaves_nothing_becomes_a_boost(client):
    body = client.get("/search", params={"q": "ผลการดำเนินงาน ปีงบประมาณ 2540", "k": 3}).json()
    fy = [u for u in body["understood"] if u["kind"] == "fiscal_year"]
    assert fy and fy[0]["value"] == "2540" and fy[0]["mode"] == "boost"
    assert body["hits"]

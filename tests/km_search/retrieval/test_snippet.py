"""Snippets and highlight spans, checked against a plain word-by-word reference."""
from __future__ import annotations

from pythainlp.tokenize import word_tokenize

from corpus.seeds import bundled_seeds
from km_search.retrieval.snippet import highlight_spans, make_snippet
from km_search.search import query_tokens
from km_search.thai import fold_digits, normalize
from km_search.thai.tokenize import engine_name


def reference_spans(text: str, qtokens: set[str]) -> list[tuple[int, int]]:
    """Segment, fold each word on its own, keep the words that are query tokens."""
    spans, off = [], 0
    for tok in word_tokenize(text, engine=engine_name()):
        if tok.strip() and fold_digits(tok.strip()) in qtokens:
            spans.append((off, off + len(tok)))
        off += len(tok)
    return spans


QUERIES = ["ปัจจัยความสำเร็จ ขอนแก่นศึกษา", "PMQA 4.0 การจัดการความรู้", "พ.ศ. ๒๕๖๔ รางวัล",
           "Khon Kaen success", "ผู้ว่าราชการจังหวัดพังงา", "quantum chromodynamics"]


def test_spans_match_reference_on_seed_texts():
    texts = [normalize(d.body) for d in bundled_seeds()]
    texts.append("ปี ๒๕๖๔ รางวัล PMQA 4.0 ของ KHON KAEN และ 2564")  # Thai digits, upper case
    checked = found = 0
    for q in QUERIES:
        qt = set(query_tokens(normalize(q)))
        for text in texts:
            for start in range(0, min(len(text), 6000), 1500):
                window = text[start:start + 600]
                got = highlight_spans(window, qt)
                assert got == reference_spans(window, qt)
                checked += 1
                found += bool(got)
    assert checked > 50 and found > 10  # both kinds of window were exercised


def test_snippet_window_holds_the_query_words():
    body = normalize(next(d.body for d in bundled_seeds() if "ขอนแก่น" in d.body))
    qt = set(query_tokens("ขอนแก่นศึกษา"))
    snippet, spans = make_snippet(body, qt, width=240)
    assert len(snippet) <= 240 + 42 and spans
    assert all(fold_digits(snippet[a:b]).strip() in qt for a, b in spans)
    # Thai digits in the text match Arabic digits in the query and the reverse
    s, sp = make_snippet("รายงานประจำปี ๒๕๖๔ ของจังหวัด", {"2564"})
    assert [s[a:b] for a, b in sp] == ["๒๕๖๔"]

"""The induced English -> Thai lexicon (KM_SEARCH_LEXICON): corpus vocabulary, word-vector
cache, thresholds, and (slow tier) real translations by the default model over the seeds."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import make_config
from corpus.seeds import bundled_seeds
from km_search.chunking import chunk_document, passage_input
from km_search.embed.cache import EmbeddingCache
from km_search.embed.fake import HashEmbedder
from km_search.query.lexicon import InducedLexicon, corpus_words, word_vectors
from km_search.retrieval.bm25 import BM25Index
from km_search.search import Searcher
from km_search.thai import tokenize


@pytest.fixture(scope="module")
def seed_index():
    toks = [tokenize(passage_input(c)) for d in bundled_seeds() for c in chunk_document(d, 120, 1)]
    return BM25Index.build(toks, list(range(len(toks)))), toks


def test_corpus_words_are_thai_words_of_enough_passages_most_frequent_first(seed_index):
    index, toks = seed_index
    words = corpus_words(index, min_df=3)
    df = {w: sum(1 for t in toks if w in t) for w in words}
    assert words and all(d >= 3 for d in df.values())
    assert all(all("\u0e01" <= ch <= "\u0e4e" for ch in w) for w in words)  # no PMQA, no 2564
    assert [df[w] for w in words] == sorted(df.values(), reverse=True)
    assert "ขอนแก่น" in words
    rare = corpus_words(index, min_df=1)
    assert len(rare) > len(words) and set(words) <= set(rare)
    assert corpus_words(index, min_df=1, max_words=7) == rare[:7]


def test_word_vectors_are_unit_length_and_embedded_once(tmp_path):
    emb = HashEmbedder()
    calls: list[list[str]] = []

    class Counting:  # the real fake embedder, counting what reaches it
        dim, fingerprint = emb.dim, emb.fingerprint

        def encode_queries(self, texts):
            calls.append(list(texts))
            return emb.encode_queries(texts)

    cache = EmbeddingCache(tmp_path / "cache.db")
    a = word_vectors(Counting(), ["จังหวัด", "province", "จังหวัด"], cache)
    b = word_vectors(Counting(), ["province", "จังหวัด"], cache)
    assert calls == [["จังหวัด", "province"]]  # duplicates and the second call: from the cache
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)
    assert np.allclose(a[0], a[2]) and np.allclose(a[1], b[0])


def test_expansion_keeps_only_pairs_at_the_threshold():
    words = ["จังหวัด", "รางวัล", "ขอนแก่น"]
    vecs = np.eye(3, dtype=np.float32)
    emb = HashEmbedder()
    lex = InducedLexicon(words, vecs, threshold=0.9)
    assert lex.latin_words(["the", "award", "award", "ขอนแก่น", "2564", "khon"]) == ["award", "khon"]
    q = word_vectors(emb, ["award"])[0]
    lex.vecs = np.stack([q, -q, np.roll(q, 1)])  # "จังหวัด" is award's own vector
    assert lex.expand(["award", "ของ"], emb) == ["จังหวัด"]
    assert lex.expand(["award", "จังหวัด"], emb) == []  # already in the query
    assert lex.expand(["ของ", "the"], emb) == []  # no English content word
    with pytest.raises(ValueError, match="threshold"):
        InducedLexicon(words, vecs, threshold=0.0)


def test_lexicon_off_by_default_and_on_adds_corpus_thai_words_for_english(seed_home):
    q = "award network citizens"
    off = Searcher(make_config(seed_home, expand=""))  # glossary off: only the lexicon translates
    assert off.cfg.lexicon == 0.0
    plain = off.probe(q, "hybrid").tokens
    assert plain == ["award", "network", "citizens"]
    on = Searcher(make_config(seed_home, expand="", lexicon=0.88))
    got = on.probe(q, "hybrid").tokens
    extra = got[len(plain):]
    assert got[:len(plain)] == plain
    vocab = set(corpus_words(on.lexical.index, 3))
    assert extra and set(extra) <= vocab, extra  # Thai words of this corpus, none invented
    # the real model maps these English words to their Thai words in the seeds
    assert {"รางวัล", "เครือข่าย", "ประชาชน"} & set(extra), extra
    # a Thai query is untouched; a stricter threshold adds fewer words
    assert on.probe("รางวัล", "hybrid").tokens == off.probe("รางวัล", "hybrid").tokens
    strict = Searcher(make_config(seed_home, expand="", lexicon=0.97))
    assert len(strict.probe(q, "hybrid").tokens) - len(plain) < len(extra)

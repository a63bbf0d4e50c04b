"""The optional cross-encoder reranker (KM_SEARCH_RERANKER), with a tiny CrossEncoder built
here from a config with random weights and a locally written tokenizer (no hub download)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import fake_config
from km_search.retrieval.rerank import CrossEncoderReranker, RerankerError
from km_search.search import Searcher

# torch and transformers load in ~10 s: with the real-model tests, outside the fast tier
pytestmark = pytest.mark.slow

QUERY = "ปัจจัยความสำเร็จของขอนแก่นศึกษา"


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A one-layer BERT sequence classifier (random weights, fixed seed) with a WordPiece
    vocabulary of single Thai and Latin characters, so Thai text becomes real, distinct
    inputs (not all [UNK]) and different passages get different scores."""
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-ce")
    chars = [chr(c) for c in range(0x0E01, 0x0E5C)] + list("abcdefghijklmnopqrstuvwxyz0123456789.")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # strip_accents off: Thai vowel and tone marks are combining characters
    tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True,
                            strip_accents=False, tokenize_chinese_chars=False)
    torch.manual_seed(11)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=512,
                     num_labels=1)
    BertForSequenceClassification(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_reranker_orders_the_fused_head_by_the_cross_encoders_scores(fake_seed_home, tiny_cross_encoder):
    plain = Searcher(fake_config(fake_seed_home))
    ranked = Searcher(fake_config(fake_seed_home, reranker=str(tiny_cross_encoder), rerank_top=8))
    assert plain.reranker is None and ranked.reranker is not None
    before = plain.search(QUERY, k=8, max_per_doc=8)
    after = ranked.search(QUERY, k=8, max_per_doc=8)
    # the same eight passages (the head of the fused list), in another order
    assert sorted(h.chunk_id for h in after) == sorted(h.chunk_id for h in before)
    assert [h.chunk_id for h in after] != [h.chunk_id for h in before]
    # the order is the cross-encoder's, scored here independently of the search code
    ce = CrossEncoderReranker(str(tiny_cross_encoder))
    own = ce.scores(QUERY, [h.text for h in after])
    assert np.all(np.diff(own) <= 1e-6)
    assert [h.scores["rerank"] for h in after] == pytest.approx(own.tolist(), abs=1e-5)
    assert [h.score for h in after] == pytest.approx(own.tolist(), abs=1e-5)
    # the fused scores are still reported next to it
    assert all("bm25" in h.scores or "dense" in h.scores for h in after)


def test_reranker_only_reorders_the_top_n(fake_seed_home, tiny_cross_encoder):
    s = Searcher(fake_config(fake_seed_home))
    fused, _, _ = s.retrieve(QUERY, "hybrid")
    rr = CrossEncoderReranker(str(tiny_cross_encoder), top_n=3)
    out = rr.rerank(QUERY, fused, s._texts)
    assert sorted(p for p, _ in out[:3]) == sorted(p for p, _ in fused[:3])
    assert out[3:] == fused[3:]


def test_reranker_off_gives_identical_results(fake_seed_home):
    default = Searcher(fake_config(fake_seed_home)).search(QUERY, k=10)
    off = Searcher(fake_config(fake_seed_home, reranker="  ")).search(QUERY, k=10)
    assert [(h.chunk_id, h.score, h.scores) for h in off] == [(h.chunk_id, h.score, h.scores) for h in default]
    assert all("rerank" not in h.scores for h in default)


def test_a_bad_reranker_is_refused_at_start_with_a_clear_error(fake_seed_home, tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(RerankerError, match="KM_SEARCH_RERANKER=.*no-such-model.*unset it"):
        Searcher(fake_config(fake_seed_home, reranker=str(missing)))
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RerankerError, match="could not be loaded as a CrossEncoder"):
        Searcher(fake_config(fake_seed_home, reranker=str(junk)))
    with pytest.raises(RerankerError, match="rerank_top"):
        CrossEncoderReranker(str(junk), top_n=0)


@pytest.mark.slow  # a subprocess that imports torch and sentence-transformers
def test_cli_refuses_a_bad_reranker_in_one_line(fake_cli_env, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = dict(fake_cli_env, KM_SEARCH_RERANKER=str(tmp_path / "no-such-model"))
    r = subprocess.run([sys.executable, "-m", "cli", "search", QUERY], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert "KM_SEARCH_RERANKER" in r.stderr and "Traceback" not in r.stderr

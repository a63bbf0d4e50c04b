"""The published retrieval figures (results/eval-test.json) are recomputed, in part, in CI.

`km-search eval --limit N` indexes the whole iapp-wiki-qa corpus (every context of the
three splits, as the committed run did) and asks only the first N test questions. The
committed figures are over all 739 questions, so a slice of N can differ by sampling
alone: each figure must lie within 3 binomial standard errors of the committed one
(sqrt(p(1-p)/N), plus 0.01), e.g. +-0.08 for hybrid R@1 = .945 at N = 100. The corpus and
passage counts and the model must match exactly.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MODELS, ROOT, strict_skip

SHARED = Path(os.environ.get("KM_SEARCH_SHARED") or ROOT.parent / "shared")
N = 100


@pytest.mark.slow
def test_eval_limit_recomputes_a_slice_of_the_committed_test_figures(tmp_path):
    data = SHARED / "data" / "iapp-wiki-qa"
    if not (data / "data.zip").exists():
        strict_skip(f"no iapp-wiki-qa data at {data} (set KM_SEARCH_SHARED)")
    committed = json.loads((ROOT / "results" / "eval-test.json").read_text(encoding="utf-8"))
    out = tmp_path / "eval.json"
    env = dict(os.environ, KM_SEARCH_HOME=str(tmp_path / "home"),
               KM_SEARCH_MODELS_DIR=str(MODELS), PYTHONIOENCODING="utf-8")
    r = subprocess.run([sys.executable, "-m", "cli", "eval", "--data", str(data),
                        "--split", "test", "--limit", str(N), "--no-english", "--json", str(out)],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text(encoding="utf-8"))
    assert res["questions"] == N and committed["questions"] > N
    for key in ("split", "corpus", "passages", "model"):
        assert res[key] == committed[key], key
    assert "seeds_en" not in res  # --no-english
    for mode in ("bm25", "dense", "hybrid"):
        for metric in ("R@1", "R@10", "MRR@10"):
            want, got = committed["modes"][mode][metric], res["modes"][mode][metric]
            tol = 3 * math.sqrt(want * (1 - want) / N) + 0.01
            assert abs(got - want) <= tol, (mode, metric, got, want, tol)

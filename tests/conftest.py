"""Shared fixtures: one real seed index per test session (CPU embedding is slow).

The converted default model is built once into KM_SEARCH_TEST_MODELS (default: the
user's normal models folder, so `install.sh` and the tests share it) and every test
home points its models_dir there.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
MODELS = Path(os.environ.get("KM_SEARCH_TEST_MODELS")
              or Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
              / "km-search" / "models")


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

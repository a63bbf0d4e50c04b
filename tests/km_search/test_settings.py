"""The one settings list: every setting (Ray's included) comes from it, typed."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Optional

import pytest

from km_search.settings import SETTINGS, load_config


def test_ray_and_backend_settings_come_from_the_list(monkeypatch, tmp_path):
    monkeypatch.setenv("KM_SEARCH_RAY_ACTORS", "3")
    monkeypatch.setenv("KM_SEARCH_RAY_GPUS", "0.5")
    monkeypatch.setenv("KM_SEARCH_BACKEND", "milvus")
    cfg = load_config(home=str(tmp_path))
    assert (cfg.ray_actors, cfg.ray_gpus, cfg.backend) == (3, 0.5, "milvus")
    assert {"ray_actors", "ray_gpus", "backend", "milvus_uri"} <= {s.name for s in SETTINGS}


def test_bad_values_get_a_clear_error_and_strings_are_cast(monkeypatch, tmp_path):
    monkeypatch.setenv("KM_SEARCH_CANDIDATES", "ร้อย")
    with pytest.raises(ValueError, match="KM_SEARCH_CANDIDATES='ร้อย' is not a valid int"):
        load_config(home=str(tmp_path))
    monkeypatch.delenv("KM_SEARCH_CANDIDATES")
    cfg = load_config(home=str(tmp_path), reload_seconds="0.5", candidates="50")
    assert cfg.reload_seconds == 0.5 and cfg.candidates == 50
    with pytest.raises(KeyError, match="unknown settings"):
        load_config(home=str(tmp_path), no_such_setting=1)


def test_config_is_a_frozen_dataclass_with_one_typed_field_per_setting(tmp_path):
    cfg = load_config(home=str(tmp_path))
    fields = dataclasses.fields(cfg)
    assert [f.name for f in fields] == [s.name for s in SETTINGS]
    types = {f.name: f.type for f in fields}
    assert (types["candidates"], types["ray_gpus"], types["fusion"]) == (int, float, str)
    assert types["llm_url"] == Optional[str] and types["models_dir"] is Path
    for s in SETTINGS:  # every value has its declared type
        value = getattr(cfg, s.name)
        assert value is None or isinstance(value, s.cast), (s.name, value)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.candidates = 5
    # a changed copy is checked like a loaded one
    assert dataclasses.replace(cfg, candidates=7).candidates == 7
    with pytest.raises(ValueError, match="candidates"):
        dataclasses.replace(cfg, candidates="7")
    assert load_config(**cfg.values) == cfg


def test_values_are_converted_to_the_setting_type(monkeypatch, tmp_path):
    monkeypatch.setenv("KM_SEARCH_FEEDBACK_MAX_MB", "๒๕")  # Thai digits: float() reads them
    monkeypatch.setenv("KM_SEARCH_MODELS_DIR", str(tmp_path / "m"))
    cfg = load_config(home=tmp_path / "h", reload_seconds=2, serve_port="8080")
    assert cfg.feedback_max_mb == 25.0 and isinstance(cfg.reload_seconds, float)
    assert cfg.serve_port == 8080 and cfg.home == str(tmp_path / "h")  # a Path home becomes text
    assert cfg.models_dir == tmp_path / "m" and isinstance(cfg.models_dir, Path)
    monkeypatch.delenv("KM_SEARCH_MODELS_DIR")
    cfg = load_config(home=str(tmp_path / "h"))
    assert cfg.models_dir == tmp_path / "h" / "models"  # derived from home when unset
    assert cfg.cache_db == tmp_path / "h" / "embed-cache.db"
    assert load_config(home=str(tmp_path), model="fast").bm25_weight == 0.8  # derived from model
    assert load_config(home=str(tmp_path), model="fast", bm25_weight=0.4).bm25_weight == 0.4


@pytest.mark.parametrize("env, raw, message", [
    ("KM_SEARCH_FUSION", "adaptve", "KM_SEARCH_FUSION='adaptve' is not one of adaptive, wsum, rrf"),
    ("KM_SEARCH_RUNTIME", "tpu", "KM_SEARCH_RUNTIME='tpu' is not one of onnx-int8, onnx, torch"),
    ("KM_SEARCH_CANDIDATES", "0", "KM_SEARCH_CANDIDATES=0 must be at least 1"),
    ("KM_SEARCH_BM25_WEIGHT", "1.5", r"KM_SEARCH_BM25_WEIGHT=1.5 must be between 0.0 and 1.0"),
    ("KM_SEARCH_SERVE_PORT", "70000", "KM_SEARCH_SERVE_PORT=70000 must be between 0 and 65535"),
    ("KM_SEARCH_RAY_GPUS", "-1", "KM_SEARCH_RAY_GPUS=-1.0 must be at least 0"),
    ("KM_SEARCH_RAY_ACTORS", "2.5", "KM_SEARCH_RAY_ACTORS='2.5' is not a valid int"),
])
def test_bad_environment_values_name_the_variable(monkeypatch, tmp_path, env, raw, message):
    monkeypatch.setenv(env, raw)
    with pytest.raises(ValueError, match=message):
        load_config(home=str(tmp_path))


def test_bad_override_types_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"candidates=2.5 is not a valid int"):
        load_config(home=str(tmp_path), candidates=2.5)
    with pytest.raises(ValueError, match=r"serve_workers=True is not a valid int"):
        load_config(home=str(tmp_path), serve_workers=True)
    with pytest.raises(ValueError, match="fusion=3 is not a valid str"):
        load_config(home=str(tmp_path), fusion=3)


def test_secrets_stay_out_of_the_repr(tmp_path):
    cfg = load_config(home=str(tmp_path), admin_token="s3cr3t-admin", llm_api_key="s3cr3t-llm")
    assert cfg.admin_token == "s3cr3t-admin" and "s3cr3t" not in repr(cfg)


def test_only_the_settings_module_reads_km_search_variables():
    """No module reads a KM_SEARCH_* variable itself: each is a setting in the list."""
    root = Path(__file__).resolve().parents[2]
    read = re.compile(r"(environ\.get|getenv)\(\s*[\"']KM_SEARCH_|"
                      r"environ\[\s*[\"']KM_SEARCH_\w+[\"']\s*\](?!\s*=[^=])")  # not a write
    offenders = [str(p.relative_to(root)) for pkg in ("km_search", "corpus", "indexer", "api",
                                                      "bench", "cli")
                 for p in (root / pkg).rglob("*.py")
                 if p.name != "settings.py" and read.search(p.read_text(encoding="utf-8"))]
    assert offenders == []

"""The one settings list: every setting (Ray's included) comes from it, typed."""
from __future__ import annotations

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

"""The layering rule: the library (km_search) imports none of the packages above it.

Each library module is imported alone in a fresh interpreter (another test's imports
cannot hide a violation), then sys.modules is searched for corpus/indexer/api/bench/cli.
"""
from __future__ import annotations

import json
import pkgutil
import re
import subprocess
import sys

import km_search
from tests.conftest import ROOT

ABOVE = ("corpus", "indexer", "api", "bench", "cli")
PROBE = r"""
import importlib, json, sys
out = {}
for name in sys.argv[1:]:
    before = set(sys.modules)
    importlib.import_module(name)
    out[name] = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in %r)
print(json.dumps(out))
""" % (ABOVE,)


def _library_modules() -> list[str]:
    return ["km_search"] + [m.name for m in pkgutil.walk_packages(km_search.__path__, "km_search.")]


def test_search_alone_loads_no_upper_layer():
    r = subprocess.run([sys.executable, "-c", PROBE, "km_search.search"], cwd=ROOT,
                       capture_output=True, text=True, check=True)
    assert json.loads(r.stdout) == {"km_search.search": []}


def test_no_library_module_imports_an_upper_layer():
    mods = _library_modules()
    assert {"km_search.search", "km_search.docstore", "km_search.passages"} <= set(mods)
    r = subprocess.run([sys.executable, "-c", PROBE, *mods], cwd=ROOT, capture_output=True,
                       text=True, check=True)
    loaded = json.loads(r.stdout)
    assert {m: v for m, v in loaded.items() if v} == {}


def test_the_version_lives_in_one_place():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in text and 'attr = "km_search.__version__"' in text
    assert "0.1.0" not in text and km_search.__version__


def test_the_api_runs_no_sql_and_reads_no_index_files():
    """HTTP only: storage (passages.db, corpus.db, feedback.db) is read through the library."""
    storage = re.compile(r"\.execute(many)?\(|\bsqlite3\b|km_search\.(passages|sqlite)\b|"
                         r"from km_search import [^\n]*\bpassages\b|DocumentStore\(")
    found = {p.name: storage.findall(p.read_text(encoding="utf-8"))
             for p in sorted((ROOT / "api").glob("*.py"))}
    assert {name: hits for name, hits in found.items() if hits} == {}

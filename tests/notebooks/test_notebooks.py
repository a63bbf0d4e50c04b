"""The notebooks are executed in CI so they cannot rot."""

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # executes notebooks


@pytest.mark.slow
@pytest.mark.parametrize("name", ["evaluation.ipynb", "corpus_exploration.ipynb"])
def test_notebook_executes(name, tmp_path, monkeypatch):
    monkeypatch.setenv("KM_SEARCH_HOME", str(tmp_path / "home"))  # corpus notebook: bundled seeds
    monkeypatch.setenv("KM_SEARCH_ARTIFACTS", str(tmp_path / "artifacts"))  # not the repo
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "Error" not in outputs
    if name == "evaluation.ipynb":
        assert "| hybrid |" in outputs and (tmp_path / "artifacts" / "eval_fusion.png").stat().st_size > 1000
    else:
        assert "passages; words per passage" in outputs and "pmqa (" in outputs

"""Every notebook in notebooks/ runs top to bottom without an error.

nbclient directly, not nbmake (which lags behind current pytest). Each notebook runs in a
python3 kernel with the repository root as its working directory, on a store built from
data/sample in tmp (OUTCOMES_DB), so the test never touches data/outcomes.duckdb.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from analytics.store.connection import DB_ENV, REPO_ROOT

pytestmark = pytest.mark.notebook

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
TIMEOUT_S = 600


def execute(path: Path) -> nbformat.NotebookNode:
    """Run every cell in order; raises CellExecutionError at the first failing cell."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO_ROOT)}}).execute()
    return nb


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ should hold at least one notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(DB_ENV, str(tmp_path / "outcomes.duckdb"))  # the kernel inherits it
    nb = execute(path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors
    assert (tmp_path / "outcomes.duckdb").exists(), "the notebook should use the store named by OUTCOMES_DB"


def test_a_broken_notebook_fails(tmp_path: Path):
    """The runner really reports errors: a notebook whose second cell raises fails."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise RuntimeError('broken on purpose')"),
        nbformat.v4.new_code_cell("y = 2"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(CellExecutionError, match="broken on purpose"):
        execute(path)

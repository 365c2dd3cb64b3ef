"""The notebooks under ``notebooks/`` run top to bottom as committed, in a Jupyter kernel of this environment (a
process of its own: that is what running a notebook is), and their committed outputs hold no error."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the dev extras: pip install -e '.[dev]'")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in the dev extras: pip install -e '.[dev]'")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:1] == ["01_quick_start.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_as_committed(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    # committed with its outputs, in order, none an error: what GitHub and the hub render
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), f"{path.name}: run it before committing"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    # the notebook's relative paths (../demo_data) start from its folder, as in Jupyter
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    assert any(o.get("data", {}).get("image/png") for c in nb.cells if c.cell_type == "code" for o in c.outputs)

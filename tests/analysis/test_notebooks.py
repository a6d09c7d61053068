"""The dashboards: generated without outputs, and they run top to bottom on a real smoke sweep."""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
DASH = ROOT / "dashboards"
NOTEBOOKS = ("pareto.ipynb", "trajectories.ipynb", "samplers.ipynb")


def test_committed_notebooks_match_the_generator_and_have_no_outputs(script_module):
    built = script_module(DASH / "make_notebooks.py").build()
    assert set(built) == set(NOTEBOOKS)
    for name, nb in built.items():
        on_disk = nbformat.read(DASH / name, as_version=4)
        assert [c.source for c in on_disk.cells] == [c.source for c in nb.cells], f"{name}: re-run make_notebooks.py"
        for c in on_disk.cells:
            if c.cell_type == "code":
                assert c.outputs == [] and c.execution_count is None, name
        # the results folder is ONE variable at the top, overridable by RSNG_RESULTS
        first_code = next(c for c in on_disk.cells if c.cell_type == "code")
        assert 'RESULTS = os.environ.get("RSNG_RESULTS", ' in first_code.source
        assert sum("RSNG_RESULTS" in c.source for c in on_disk.cells if c.cell_type == "code") == 1


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_on_a_real_sweep(name, smoke_sweep_dir, smoke_n, tmp_path, monkeypatch):
    monkeypatch.setenv("RSNG_RESULTS", str(smoke_sweep_dir))
    nb = nbformat.read(DASH / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    images = 0
    for i, c in enumerate(code):
        assert not any(o.output_type == "error" for o in c.outputs), (name, i)
        if i > 0:  # every cell after the RESULTS one shows something
            assert c.outputs, (name, i, c.source[:80])
        for o in c.outputs:
            png = o.get("data", {}).get("image/png")
            if png:
                raw = base64.b64decode(png)
                assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 1024
                images += 1
    assert images >= 1, name
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for c in code for o in c.outputs)
    assert str(smoke_sweep_dir) in text and f"{smoke_n} trajectories" in text  # it read the folder it was pointed at

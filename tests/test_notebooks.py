"""The notebooks run top to bottom (nbclient, the venv's ``python3`` kernel) and show what they promise.

Each notebook runs in a fresh temporary folder (with a link to the repository's
``synthetic/``) and writes only into ``$FRAUDKIT_NOTEBOOK_OUT``; a failing cell fails the test.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
TIMEOUT = 120  # seconds per cell


@pytest.fixture
def venv_kernel(tmp_path, monkeypatch):
    """A ``python3`` kernelspec that runs this interpreter (the venv's), first on JUPYTER_PATH.

    Without it, a user-level ``python3`` kernelspec pointing at another Python would win
    and the notebooks would run without fraudkit.
    """
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (fraudkit venv)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join([str(tmp_path / "jupyter"), os.environ.get("JUPYTER_PATH", "")]).rstrip(os.pathsep))
    return "python3"


def _cell(nb, tag: str):
    found = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(found) == 1, f"exactly one cell tagged {tag!r} expected"
    return found[0]


def _text(cell) -> str:
    """Everything a cell printed or showed, as text (html preferred, else plain)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "data" in out:
            parts.append(out["data"].get("text/html") or out["data"].get("text/plain", ""))
    return "".join(parts)


@pytest.fixture
def run_notebook(tmp_path, monkeypatch, venv_kernel):
    def run(name: str):
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name} is stored with outputs"
        cwd = tmp_path / "cwd"
        out = tmp_path / "out"
        cwd.mkdir()
        (cwd / "synthetic").symlink_to(REPO / "synthetic", target_is_directory=True)
        monkeypatch.setenv("FRAUDKIT_NOTEBOOK_OUT", str(out))
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'never-used.db'}")
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        client = nbclient.NotebookClient(nb, kernel_name=venv_kernel, timeout=TIMEOUT,
                                         resources={"metadata": {"path": str(cwd)}})
        client.execute()
        return nb, out

    return run


def test_kernel_is_this_python(venv_kernel):
    from jupyter_client.kernelspec import KernelSpecManager

    assert KernelSpecManager().get_kernel_spec(venv_kernel).argv[0] == sys.executable


def test_quickstart(run_notebook):
    nb, out = run_notebook("01_quickstart.ipynb")
    table = _text(_cell(nb, "top-providers"))
    assert "<table" in table and table.split("<tbody>")[1].count("<tr>") == 10  # the 10 providers to inspect
    assert "precision@10" in _text(_cell(nb, "evaluation"))
    report = out / "report.html"
    assert report.is_file() and report.stat().st_size > 100_000
    assert "report.html" in _text(_cell(nb, "report"))


def test_investigate_a_provider(run_notebook):
    nb, out = run_notebook("02_investigate_a_provider.ipynb")
    case = _text(_cell(nb, "case"))
    assert "rank 1" in case and "evidence claims to pull" in case
    assert "nodes" in _text(_cell(nb, "network"))
    evidence = list(out.glob("evidence_*.csv"))
    assert len(evidence) == 1 and len(evidence[0].read_text().splitlines()) >= 2  # header + at least one claim


def test_retrain_and_compare(run_notebook, tmp_path):
    nb, out = run_notebook("03_retrain_and_compare.ipynb")
    decision = _text(_cell(nb, "decision"))
    assert "Rule:" in decision and "Decision:" in decision
    assert (out / "mlruns.db").is_file()
    assert not (tmp_path / "never-used.db").exists()  # the notebook used its own store
    assert (out / "mlartifacts").is_dir()  # artifacts beside the notebook's store
    assert not {"mlruns.db", "mlartifacts", "mlruns"} & {p.name for p in (tmp_path / "cwd").iterdir()}


def test_notebooks_are_stored_clean():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} is stored with outputs"

"""Shared fixtures: a small labelled synthetic batch, generated once per test session.

``tiny_batch_dir``: folder of ``synthetic/tiny.yaml`` generated with seed 0 (Parquet, with labels/).
``tiny_batch``: ``(Batch, Labels)`` loaded from it through the one loader, ``fraudkit.io``.
``run_cli``: runs ``fraudkit ARGS...`` in this process, returns ``(exit code, stdout, stderr)``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_SCENARIO = REPO / "synthetic" / "tiny.yaml"


@pytest.fixture(scope="session")
def tiny_batch_dir(tmp_path_factory) -> Path:
    from fraudkit.synthetic import Scenario, generate_to

    out = tmp_path_factory.mktemp("tiny") / "batch"
    # FRAUDKIT_TINY_SEED lets the whole suite be re-run on another tiny batch (default: seed 0)
    generate_to(Scenario.from_yaml(TINY_SCENARIO), out, seed=int(os.environ.get("FRAUDKIT_TINY_SEED", "0")))
    return out


@pytest.fixture(scope="session")
def tiny_batch(tiny_batch_dir):
    from fraudkit.io import load_batch, load_labels

    return load_batch(tiny_batch_dir), load_labels(tiny_batch_dir)


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """``run_cli(["score", ...])``: the ``fraudkit`` command in this process -> (exit code, stdout, stderr)."""
    from fraudkit.cli import main

    def run(args: list[str]) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["fraudkit", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def default_200k():
    """A default-scenario batch of 200,000 claims (seed 5), its labels and its features (fitted on itself)."""
    from fraudkit.features import FeatureBuilder
    from fraudkit.synthetic import Scenario, generate

    batch, labels = generate(Scenario.from_yaml("synthetic/default.yaml"), n_claims=200_000, seed=5)
    return batch, labels, FeatureBuilder().fit(batch).transform(batch)

"""Fuzzing ``fraudkit score``: whatever the CSV cells hold, it scores (exit 0, all outputs) or refuses (exit 2, nothing).

Mutations of the tiny valid batch of ``tests/bad_batches`` go through the whole
pipeline (features, forests, graph detectors, ranking, report) under both
``--on-bad-rows`` policies; a batch of four claims is also the smallest edge case
the pipeline must survive.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bad_batches import Tables

EXAMPLES = int(os.environ.get("FRAUDKIT_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXAMPLES or 12, deadline=None, derandomize=not EXAMPLES,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
OUTPUTS = {"claims.parquet", "patients.parquet", "providers.csv", "report.html", "summary.json"}
CELLS = st.sampled_from(["", "0", "-1", "1.005", "nan", "inf", "1e15", "2024-02-30", "2024-03-03", "true", "x",
                         "P1", "P2", "H1", "C1", "D1", "K1", "K2", "J18.9", "hospital", "pharmacy", "drug", "3",
                         "0.01", "男", "K[/x]", "<b>"])


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    from fraudkit.pipeline import FraudModel, save_model
    from fraudkit.synthetic import Scenario, generate

    batch, _ = generate(Scenario.from_yaml(Path(__file__).parents[1] / "synthetic" / "tiny.yaml"), n_claims=3000, seed=1)
    return save_model(FraudModel().fit(batch), tmp_path_factory.mktemp("model") / "m")


def test_the_smallest_valid_batch_scores(small_model, tmp_path, run_cli):
    root = Tables().write(tmp_path / "batch")
    code, out, err = run_cli(["score", str(root), "--model", str(small_model), "--out", str(tmp_path / "out"), "-q"])
    text = out + err
    assert code == 0, text
    assert {p.name for p in (tmp_path / "out").iterdir()} == OUTPUTS


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(["patients", "providers", "claims", "items"]),
                                st.integers(1, 7), st.integers(0, 11), CELLS), min_size=1, max_size=4),
       policy=st.sampled_from(["refuse", "reject"]))
# found by a long run: every item line rejected left a batch without cost detail
@example(edits=[("patients", 1, 0, ""), ("items", 5, 0, ""), ("items", 6, 0, "")], policy="reject")
def test_score_never_crashes_and_never_writes_half(small_model, run_cli, edits, policy):
    tables = Tables()
    for table, row, col, value in edits:
        rows = tables[table]
        if row < len(rows):
            rows[row][col % len(rows[0])] = value
    with tempfile.TemporaryDirectory(prefix="fuzz-score-") as tmp:
        root = tables.write(Path(tmp) / "batch")
        out = Path(tmp) / "out"
        code, stdout, stderr = run_cli(["score", str(root), "--model", str(small_model), "--out", str(out), "-q",
                                        "--on-bad-rows", policy])
        text = stdout + stderr
        assert "Traceback" not in text
        if code == 0:
            names = {p.name for p in out.iterdir()}
            assert OUTPUTS <= names <= OUTPUTS | {"rejects.parquet"}
        else:
            assert code == 2, text
            assert text.strip().startswith("error:") and not out.exists()

"""``generate_to(..., parts=N, workers=W)``: parts written by worker processes are the same bytes as one process's."""

import hashlib

import pytest

from fraudkit.synthetic import Scenario, generate_to
from fraudkit.synthetic import _generate


def _digest(folder):
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.parametrize("parts", [3, 7])
def test_parallel_parts_are_the_same_bytes_whatever_the_workers(tmp_path, monkeypatch, parts):
    monkeypatch.setattr(_generate, "BLOCK", 1_000)  # several blocks per part on a small batch
    sc = Scenario.from_yaml("synthetic/tiny.yaml")
    digests = []
    for workers in (1, 2, 3):
        out = tmp_path / f"w{workers}"
        summary = generate_to(sc, out, n_claims=5_500, seed=4, parts=parts, workers=workers)
        assert len(list((out / "items").glob("*.parquet"))) == parts
        digests.append((_digest(out), summary))
    assert digests[0] == digests[1] == digests[2]


def test_workers_must_be_positive(tmp_path):
    from fraudkit.synthetic import ScenarioError

    with pytest.raises(ScenarioError, match="workers"):
        generate_to(Scenario.from_yaml("synthetic/tiny.yaml"), tmp_path / "x", n_claims=500, parts=2, workers=0)

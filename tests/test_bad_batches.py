"""The corpus of malformed batches (``tests/bad_batches``) against ``fraudkit validate`` and ``load_batch``.

Every case must be refused with exit code 2 and a one-paragraph message naming
table, column, rule and offending rows, with no traceback and nothing written;
under ``on_bad_rows="reject"`` the row-level cases must keep the good rows and
account for every row read.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from bad_batches import CASES, CASES_BY_NAME, VALID_ROWS, build_corpus, write_valid
from fraudkit.io import REFERENCES, BatchError, TABLES, load_batch, validate_batch

ROW_LEVEL = [c.name for c in CASES if c.row_level]
#: Cases also run as a real subprocess (the rest run in-process, which is faster).
#: The sparse 2 GiB files run as subprocesses in ``test_sparse_2gb_file_in_a_subprocess_stays_small``.
SUBPROCESS = ["missing_column", "non_utf8_csv", "dangling_claim", "ragged_csv_row"]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_batches")
    paths = build_corpus(root)
    paths["valid"] = write_valid(root / "valid")
    return paths


def _snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for folder in folders:
        for p in folder.rglob("*"):
            st = p.stat()
            out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def _fraudkit() -> list[str]:
    exe = Path(sys.executable).with_name("fraudkit")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "fraudkit"]


def _assert_refusal(name: str, code: int, out: str, err: str) -> None:
    case = CASES_BY_NAME[name]
    assert code == 2, f"{name}: exit {code}\n{out}\n{err}"
    assert "Traceback" not in err + out
    message = err.strip()
    assert message.startswith("error: Batch "), message
    assert "\n" not in message, f"{name}: not one paragraph:\n{message}"
    assert message.endswith("Nothing was written."), message
    missing = [fragment for fragment in case.expect if fragment not in message]
    assert not missing, f"{name}: message lacks {missing}:\n{message}"


def test_corpus_is_large_and_every_case_differs_from_the_valid_batch(corpus):
    assert len(CASES) >= 30
    valid = {p.name: p.read_bytes() for p in corpus["valid"].iterdir()}
    for case in CASES:
        if case.huge:
            continue
        folder = corpus[case.name]
        files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
        assert files != valid, case.name


def test_the_valid_batch_passes(corpus, run_cli):
    code, out, err = run_cli(["validate", str(corpus["valid"])])
    assert code == 0, err
    assert "ok" in out
    batch = load_batch(corpus["valid"])
    assert {n: len(f) for n, f in batch.tables().items()} == VALID_ROWS


@pytest.mark.parametrize("name", [c.name for c in CASES if c.name not in SUBPROCESS])
def test_validate_refuses_in_process(name, corpus, tmp_path, monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)  # anything written to the working folder would show up here
    before = _snapshot(corpus[name])
    code, out, err = run_cli(["validate", str(corpus[name])])
    _assert_refusal(name, code, out, err)
    assert _snapshot(corpus[name]) == before
    assert list(tmp_path.iterdir()) == []


def test_validate_refuses_in_a_subprocess(corpus, tmp_path):
    """The real console script, in parallel; the sparse 2 GiB files must not be read whole."""
    procs = {}
    for name in SUBPROCESS:
        work = tmp_path / name
        work.mkdir()
        procs[name] = (work, _snapshot(corpus[name]), subprocess.Popen(
            [*_fraudkit(), "validate", str(corpus[name])], cwd=work, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, COLUMNS="300")))
    for name, (work, before, proc) in procs.items():
        out, err = proc.communicate(timeout=120)
        _assert_refusal(name, proc.returncode, out, err)
        assert _snapshot(corpus[name]) == before
        assert list(work.iterdir()) == []


@pytest.mark.parametrize("name", [c.name for c in CASES if c.huge])
def test_sparse_2gb_file_fails_fast_without_loading_it(name, corpus):
    path = corpus[name]
    assert sum(p.stat().st_size for p in path.iterdir()) > (2 << 30)  # it really is that big
    process = psutil.Process()
    rss_before = process.memory_info().rss
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    with pytest.raises(BatchError) as info:
        load_batch(path)
    elapsed = time.perf_counter() - start
    grown = process.memory_info().rss - rss_before
    peak_grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak_before
    assert elapsed < 1.0, f"{elapsed:.2f} s: the file was read, not refused up front"
    assert grown < 64 << 20 and peak_grown < 64 << 20, (grown, peak_grown)
    assert "claims" in str(info.value)


#: Runs a command and prints its exit code and peak RSS (KiB). Started as a small process of its own,
#: so that the measured command is forked from it and not from pytest: a child forked from a large
#: process counts the parent's resident pages in its peak until it execs.
_PEAK_RSS = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read()
_, status, usage = os.wait4(proc.pid, 0)
sys.stderr.buffer.write(err)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def test_sparse_2gb_file_in_a_subprocess_stays_small(corpus):
    """Peak memory of the whole ``fraudkit validate`` process, from the kernel (wait4)."""
    for name in ("sparse_2gb_csv_after_header", "sparse_2gb_parquet"):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _PEAK_RSS, *_fraudkit(), "validate", str(corpus[name])],
                              capture_output=True, text=True, timeout=120)
        elapsed = time.perf_counter() - start
        code, peak_kib = (int(v) for v in done.stdout.split())
        _assert_refusal(name, code, "", done.stderr)
        assert peak_kib * 1024 < 600 << 20, f"{name}: peak RSS {peak_kib / 1024:.0f} MiB"
        assert elapsed < 30, elapsed  # interpreter start-up and imports included


# --------------------------------------------------------------------------- on_bad_rows="reject"
@pytest.mark.parametrize("name", [c.name for c in CASES if not c.row_level and not c.huge])
def test_reject_still_refuses_problems_that_are_not_about_rows(name, corpus):
    with pytest.raises(BatchError):
        load_batch(corpus[name], on_bad_rows="reject")


@pytest.mark.parametrize("name", ROW_LEVEL)
def test_reject_keeps_good_rows_and_accounts_for_every_row(name, corpus):
    case = CASES_BY_NAME[name]
    with pytest.raises(BatchError):
        load_batch(corpus[name])  # refused by default
    batch = load_batch(corpus[name], on_bad_rows="reject")
    rejects = batch.rejects
    assert len(rejects) > 0
    assert rejects["reason"].str.len().gt(0).all() and rejects["location"].str.len().gt(0).all()
    for table in TABLES:
        mine = rejects[rejects["table"] == table]
        assert len(getattr(batch, table)) + len(mine) == case.rows[table], table
        assert mine["row"].is_unique
        assert set(mine["id"]) == case.rejected.get(table, set()), (table, mine)
    # The first reason of a row that broke a rule itself names the table.column and the rule.
    assert any("." in r and ":" in r for r in rejects["reason"])
    # Cascades: nothing kept points at something rejected.
    kept_claims = set(batch.claims.claim_id)
    assert set(batch.items.claim_id) <= kept_claims
    assert set(batch.claims.patient_id) <= set(batch.patients.patient_id)
    assert set(batch.claims.provider_id) <= set(batch.providers.provider_id)
    rejected_item_claims = set(rejects.loc[rejects["table"] == "items", "id"])
    assert not (rejected_item_claims & kept_claims)
    # The references are looked up among the kept rows, not the rows as read.
    _assert_rows_of(batch)
    # What is kept is itself a valid batch.
    validate_batch(batch)


def _assert_rows_of(batch) -> None:
    """Every reference's ``rows_of`` names the row holding the same id."""
    for (table, column), ref in REFERENCES.items():
        rows = batch.rows_of(table, column)
        frame, target = getattr(batch, table), getattr(batch, ref)
        assert rows.dtype == np.int64 and len(rows) == len(frame) and (rows >= 0).all(), (table, column)
        assert (target[column].to_numpy(dtype=object)[rows] == frame[column].to_numpy(dtype=object)).all(), (table, column)


def test_rows_of_keeps_the_validators_lookups_until_a_table_is_replaced(corpus, monkeypatch):
    import fraudkit.io._batch as loader

    batch = load_batch(corpus["valid"])
    with monkeypatch.context() as m:
        m.setattr(loader, "positions_in", None)  # no lookup left to do: the validator's are kept
        _assert_rows_of(batch)
    kept = batch.rows_of("items", "claim_id")
    assert batch.rows_of("items", "claim_id") is kept
    with pytest.raises(ValueError, match="read-only"):
        kept[0] = 1  # shared, so read-only
    # Claims in another order: every reference into claims is looked up again.
    batch.claims = batch.claims.iloc[::-1].reset_index(drop=True)
    again = batch.rows_of("items", "claim_id")
    assert again is not kept and (again == len(batch.claims) - 1 - kept).all()
    _assert_rows_of(batch)
    with pytest.raises(ValueError, match="names no other table"):
        batch.rows_of("claims", "doctor_id")


def test_a_batch_with_kept_lookups_pickles_and_copies(corpus):
    import copy
    import pickle

    batch = load_batch(corpus["valid"])
    batch.rows_of("items", "claim_id")
    for other in (pickle.loads(pickle.dumps(batch)), copy.deepcopy(batch)):
        for name in TABLES:
            pd.testing.assert_frame_equal(getattr(other, name), getattr(batch, name))
        _assert_rows_of(other)


def test_reject_location_points_at_the_csv_line(corpus):
    batch = load_batch(corpus["dangling_claim"], on_bad_rows="reject")
    row = batch.rejects.iloc[0]
    assert (row["table"], row["id"], row["location"], row["row"]) == ("items", "K9", "items.csv line 9", 7)
    assert "must name a claim" in row["reason"]


def test_ids_that_look_like_markup_are_printed_verbatim(tmp_path, run_cli):
    from bad_batches import Tables

    t = Tables()
    t.set("claims", 2, "claim_id", "K[/x]").set("claims", 2, "care_type", "emergency")
    for row in t["items"][1:]:
        if row[0] == "K2":
            row[0] = "K[/x]"
    root = t.write(tmp_path / "batch")
    code, out, err = run_cli(["validate", str(root)])
    assert code == 2 and "Traceback" not in err
    assert "claim_id K[/x] (claims.csv line 3)" in err

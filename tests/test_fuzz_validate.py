"""Fuzzing the batch boundary: whatever is in the files, ``load_batch`` either loads or raises BatchError.

Mutations of the tiny valid batch of ``tests/bad_batches``: random cells, random
bytes, truncations, flipped bytes, shuffled columns and rows. A batch that is
still valid (shuffled columns and rows) must load and hold the same rows.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bad_batches import VALID, VALID_ROWS, Tables
from fraudkit.io import TABLES, BatchError, load_batch

#: ``FRAUDKIT_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz_validate.py`` for a long, random hunt; the suite's
#: default is small and derandomised (same examples every run).
EXAMPLES = int(os.environ.get("FRAUDKIT_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXAMPLES or 30, deadline=None, derandomize=not EXAMPLES,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

#: Values that sit near the edges of the contract's rules.
EDGE_VALUES = ["", " ", "0", "-0", "-1", "1.005", "0.001", "1e400", "-1e400", "nan", "NaN", "inf", "-inf", "1e15",
               "99999999999999999999", "9223372036854775808", "2024-13-01", "2024-02-30", "0000-00-00", "9999-12-31",
               "true", "FALSE", "2", "M", "f", "EBMI", "hospital", "bed", "P1", "K1", "H1", "K9", "1,5", '"', "'",
               "\t", "a\nb", "\r\n", "\r", "男", "\ufeff", "\u200b", "%s", "{}", "1_000", "0x10", "+3", "3.", ".5"]
CELL = st.one_of(st.sampled_from(EDGE_VALUES),
                 st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00["), max_size=12))


def _batch_dir() -> contextlib.AbstractContextManager[str]:
    return tempfile.TemporaryDirectory(prefix="fuzz-")


def _load_both_ways(root: Path) -> None:
    """load_batch under both policies: a Batch or a BatchError, and under reject every row accounted for."""
    try:
        load_batch(root)
    except BatchError as exc:
        assert str(exc).endswith("Nothing was written.") and "\n" not in str(exc)
    try:
        batch = load_batch(root, on_bad_rows="reject")
    except BatchError:
        return
    for name in TABLES:
        rejected = int((batch.rejects["table"] == name).sum())
        assert len(getattr(batch, name)) + rejected == _rows_read(root, name), name


def _rows_read(root: Path, name: str) -> int:
    import pyarrow.csv as pacsv

    return pacsv.read_csv(root / f"{name}.csv", parse_options=pacsv.ParseOptions(newlines_in_values=True)).num_rows


@FUZZ
@given(data=st.data())
def test_random_cell_mutations(data):
    tables = Tables()
    for _ in range(data.draw(st.integers(1, 4), label="cells")):
        name = data.draw(st.sampled_from(list(TABLES)), label="table")
        rows = tables[name]
        r = data.draw(st.integers(0 if name != "items" else 1, len(rows) - 1), label="row")  # row 0 = header
        c = data.draw(st.integers(0, len(rows[0]) - 1), label="column")
        rows[r][c] = data.draw(CELL, label="value")
    with _batch_dir() as d:
        _load_both_ways(tables.write(Path(d)))


@FUZZ
@given(name=st.sampled_from(list(TABLES)), junk=st.binary(max_size=300))
def test_random_bytes_as_a_table(name, junk):
    with _batch_dir() as d:
        root = Tables().write(Path(d))
        (root / f"{name}.csv").write_bytes(junk)
        with pytest.raises(BatchError):  # even an empty items table needs its header row
            load_batch(root)


@FUZZ
@given(name=st.sampled_from(list(TABLES)), cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=3))
def test_truncated_and_flipped_files(name, cut, flips):
    with _batch_dir() as d:
        root = Tables().write(Path(d))
        path = root / f"{name}.csv"
        data = bytearray(path.read_bytes())
        data = data[: int(len(data) * cut)]
        for where, byte in flips:
            if data:
                data[min(int(where * len(data)), len(data) - 1)] = byte
        path.write_bytes(bytes(data))
        try:
            load_batch(root)
        except BatchError as exc:
            assert "\n" not in str(exc)


@FUZZ
@given(name=st.sampled_from(["patients", "providers", "claims"]), cut=st.floats(0.05, 0.99), parquet_names=st.sets(st.sampled_from(list(TABLES))))
def test_truncated_parquet(name, cut, parquet_names):
    from bad_batches import csv_to_parquet

    with _batch_dir() as d:
        root = Tables().write(Path(d))
        for table in parquet_names | {name}:
            csv_to_parquet(root / f"{table}.csv", root / f"{table}.parquet")
            (root / f"{table}.csv").unlink()
        path = root / f"{name}.parquet"
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * cut)])
        with pytest.raises(BatchError, match=rf"{name}\.parquet is not a readable Parquet file"):
            load_batch(root)


@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_shuffled_columns_and_rows_still_load(seed):
    rng = random.Random(seed)
    tables = Tables()
    for name in TABLES:
        rows = tables[name]
        order = list(range(len(rows[0])))
        rng.shuffle(order)
        body = rows[1:]
        rng.shuffle(body)
        tables.rows[name] = [[r[i] for i in order] for r in [rows[0], *body]]
    with _batch_dir() as d:
        batch = load_batch(tables.write(Path(d)))
    assert {n: len(f) for n, f in batch.tables().items()} == VALID_ROWS
    assert sorted(batch.claims.claim_id) == ["K1", "K2", "K3", "K4"]
    assert list(batch.claims.columns) == list(TABLES["claims"].column_names)
    assert batch.claims.set_index("claim_id").loc["K1", "total_amount"] == pytest.approx(1250.50)


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_cli_validate_exits_0_or_2_with_one_paragraph(data):
    from fraudkit.cli import main

    tables = Tables()
    name = data.draw(st.sampled_from(list(TABLES)))
    r = data.draw(st.integers(1, len(tables[name]) - 1))
    c = data.draw(st.integers(0, len(tables[name][0]) - 1))
    tables[name][r][c] = data.draw(CELL)
    with _batch_dir() as d:
        root = tables.write(Path(d) / "batch")
        out, err = io.StringIO(), io.StringIO()
        argv, sys.argv = sys.argv, ["fraudkit", "validate", str(root)]
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main()
            code = 0
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.argv = argv
        assert sorted(p.name for p in root.iterdir()) == sorted(f"{n}.csv" for n in VALID)
    assert code in (0, 2), (code, err.getvalue())
    assert "Traceback" not in err.getvalue()
    if code == 2:
        assert err.getvalue().strip().count("\n") == 0, err.getvalue()

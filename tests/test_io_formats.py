"""Batches written by other programs load as the same typed batch as fraudkit's own CSV.

Outside checks hand fraudkit Parquet and CSV from Spark, pandas, R or Excel. Each
test stores the tiny valid batch of ``tests/bad_batches`` in one such way and
compares the loaded tables, column by column, with the batch loaded from plain CSV.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bad_batches import VALID, Tables
from fraudkit.io import TABLES, BatchError, load_batch, to_arrow, validate_batch, write_batch

#: Numeric ids for the batch, so that id columns can also be stored as integers.
_IDS = {"P1": "9001", "P2": "9002", "P3": "9003", "H1": "501", "C1": "502", "D1": "503",
        "K1": "330102199001011234", "K2": "330102199001011235", "K3": "330102199001011236", "K4": "330102199001011237",
        "DR1": "71", "DR2": "72", "DR3": "73"}
NUMERIC = {name: re.sub(r"\b(P\d|H1|C1|D1|K\d|DR\d)\b", lambda m: _IDS[m.group(1)], text) for name, text in VALID.items()}


def _write_csv(root: Path, texts: dict[str, str]) -> Path:
    return Tables(texts).write(root)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The numeric-id batch as loaded from plain CSV: what every variant must equal."""
    return load_batch(_write_csv(tmp_path_factory.mktemp("ref"), NUMERIC))


def _arrow(reference) -> dict[str, pa.Table]:
    return {name: to_arrow(table, getattr(reference, name)) for name, table in TABLES.items()}


def _replace(table: pa.Table, column: str, array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(column), column, array)


def _write_parquet(root: Path, tables: dict[str, pa.Table]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        pq.write_table(table, root / f"{name}.parquet")
    return root


def _assert_same(loaded, reference) -> None:
    for name, table in TABLES.items():
        got, want = getattr(loaded, name), getattr(reference, name)
        cols = list(table.column_names)
        pd.testing.assert_frame_equal(got[cols].reset_index(drop=True), want[cols].reset_index(drop=True), check_exact=False)


def test_fraudkit_parquet_and_csv_round_trip(reference, tmp_path):
    for fmt in ("parquet", "csv"):
        out = write_batch(reference, tmp_path / fmt, fmt=fmt)
        _assert_same(load_batch(out), reference)


def test_integer_ids_with_nulls_keep_every_digit(reference, tmp_path):
    tables = _arrow(reference)
    for name, column in [("patients", "patient_id"), ("providers", "provider_id"), ("claims", "claim_id"),
                         ("claims", "patient_id"), ("claims", "provider_id"), ("claims", "doctor_id"), ("items", "claim_id")]:
        values = tables[name][column].to_pylist()
        tables[name] = _replace(tables[name], column, pa.array([None if v is None else int(v) for v in values], pa.int64()))
    assert tables["claims"]["doctor_id"].null_count == 1  # a null in an int64 column: no float detour allowed
    loaded = load_batch(_write_parquet(tmp_path, tables))
    _assert_same(loaded, reference)
    assert loaded.claims.claim_id.iloc[0] == "330102199001011234"


def test_ids_written_as_floats_read_back_without_decimals(reference, tmp_path):
    tables = _arrow(reference)
    tables["patients"] = _replace(tables["patients"], "patient_id", tables["patients"]["patient_id"].cast(pa.int64()).cast(pa.float64()))
    tables["claims"] = _replace(tables["claims"], "patient_id", tables["claims"]["patient_id"].cast(pa.int64()).cast(pa.float64()))
    _assert_same(load_batch(_write_parquet(tmp_path, tables)), reference)


@pytest.mark.parametrize("date_type", ["string", "date64", "timestamp_ns", "timestamp_ms_shanghai", "timestamp_with_time"])
def test_dates_stored_as_strings_or_timestamps(reference, tmp_path, date_type):
    tables = _arrow(reference)
    for name, column in [("claims", "admit_date"), ("claims", "discharge_date"), ("items", "service_date")]:
        col = tables[name][column]
        if date_type == "string":
            new = col.cast(pa.string())
        elif date_type == "date64":
            new = col.cast(pa.date64())
        elif date_type == "timestamp_ns":
            new = col.cast(pa.timestamp("ns"))
        elif date_type == "timestamp_ms_shanghai":
            # Midnight in Beijing, stored as an instant (UTC 16:00 the day before).
            local = pd.to_datetime(col.to_pandas()).dt.tz_localize("Asia/Shanghai")
            new = pa.array(local, pa.timestamp("ms", tz="Asia/Shanghai"))
        else:
            new = pa.array(pd.to_datetime(col.to_pandas()) + pd.Timedelta(hours=9, minutes=30), pa.timestamp("us"))
        tables[name] = _replace(tables[name], column, new)
    _assert_same(load_batch(_write_parquet(tmp_path, tables)), reference)


def test_money_as_decimal128(reference, tmp_path):
    tables = _arrow(reference)
    for name, columns in [("claims", ["total_amount", "eligible_amount", "fund_paid", "self_paid"]),
                          ("items", ["quantity", "unit_price", "amount"])]:
        for column in columns:
            values = [None if v is None else Decimal(f"{v:.4f}") for v in tables[name][column].to_pylist()]
            tables[name] = _replace(tables[name], column, pa.array(values, pa.decimal128(18, 4)))
    _assert_same(load_batch(_write_parquet(tmp_path, tables)), reference)


def test_decimal_money_with_fractional_cents_is_refused(reference, tmp_path):
    tables = _arrow(reference)
    values = [Decimal("300.005")] + [Decimal(f"{v:.3f}") for v in tables["items"]["amount"].to_pylist()[1:]]
    tables["items"] = _replace(tables["items"], "amount", pa.array(values, pa.decimal128(12, 3)))
    with pytest.raises(BatchError, match=r"items\.amount breaks the rule 'must be whole cents.*items\.parquet row 1"):
        load_batch(_write_parquet(tmp_path, tables))


def test_categorical_and_dictionary_columns(reference, tmp_path):
    # pandas writes categoricals as dictionary-encoded columns; R factors look the same.
    root = tmp_path / "b"
    root.mkdir()
    for name, table in TABLES.items():
        frame = getattr(reference, name).copy()
        for c in table.columns:
            if c.kind in ("enum", "id", "str") and not c.nullable:
                frame[c.name] = frame[c.name].astype(str).astype("category")
        frame.to_parquet(root / f"{name}.parquet", index=False)
    assert pa.types.is_dictionary(pq.read_schema(root / "claims.parquet").field("care_type").type)
    _assert_same(load_batch(root), reference)


def test_dictionary_with_unknown_category_is_refused(reference, tmp_path):
    tables = _arrow(reference)
    sex = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2], pa.int8()), pa.array(["M", "F", "X"]))
    tables["patients"] = _replace(tables["patients"], "sex", sex)
    with pytest.raises(BatchError, match=r"patients\.sex breaks the rule 'must be one of M/F' in 1 row: patient_id 9003"):
        load_batch(_write_parquet(tmp_path, tables))


@pytest.mark.parametrize("as_type", [pa.int8(), pa.int64(), pa.float64(), pa.string()])
def test_bool_as_zero_one(reference, tmp_path, as_type):
    tables = _arrow(reference)
    retired = [int(v) for v in tables["patients"]["retired"].to_pylist()]
    array = pa.array([str(v) for v in retired]) if as_type == pa.string() else pa.array(retired, as_type)
    tables["patients"] = _replace(tables["patients"], "retired", array)
    _assert_same(load_batch(_write_parquet(tmp_path, tables)), reference)


def test_bool_with_a_null_or_a_two_is_refused(reference, tmp_path):
    tables = _arrow(reference)
    tables["patients"] = _replace(tables["patients"], "retired", pa.array([True, None, False]))
    with pytest.raises(BatchError, match=r"patients\.retired breaks the rule 'must not be empty' in 1 row: patient_id 9002"):
        load_batch(_write_parquet(tmp_path / "a", tables))
    tables["patients"] = _replace(tables["patients"], "retired", pa.array([1, 2, 0], pa.int32()))
    with pytest.raises(BatchError, match=r"patients\.retired breaks the rule 'must be true/false or 1/0'.*9002"):
        load_batch(_write_parquet(tmp_path / "b", tables))


def test_large_strings_small_ints_and_float32(reference, tmp_path):
    tables = _arrow(reference)
    tables["claims"] = tables["claims"].cast(pa.schema([
        pa.field(f.name, pa.large_string() if f.type == pa.string() else pa.float32() if f.type == pa.float64() else f.type)
        for f in tables["claims"].schema]))
    tables["providers"] = _replace(tables["providers"], "tier", tables["providers"]["tier"].cast(pa.uint8()))
    tables["providers"] = _replace(tables["providers"], "beds", tables["providers"]["beds"].cast(pa.int16()))
    _assert_same(load_batch(_write_parquet(tmp_path, tables)), reference)


def test_all_null_column_is_a_null_type(reference, tmp_path):
    tables = _arrow(reference)
    tables["claims"] = _replace(tables["claims"], "diagnosis", pa.nulls(4))
    loaded = load_batch(_write_parquet(tmp_path, tables))
    assert loaded.claims.diagnosis.tolist() == ["", "", "", ""]
    tables["claims"] = _replace(tables["claims"], "care_type", pa.nulls(4))
    with pytest.raises(BatchError, match=r"claims\.care_type breaks the rule 'must not be empty' in 4 rows"):
        load_batch(_write_parquet(tmp_path / "b", tables))


def test_nested_column_is_refused_not_crashed(reference, tmp_path):
    tables = _arrow(reference)
    tables["providers"] = _replace(tables["providers"], "tier", pa.array([[3], [0], [0]]))
    with pytest.raises(BatchError, match=r"providers\.tier"):
        load_batch(_write_parquet(tmp_path, tables))


def test_parquet_parts_in_any_column_order_and_mixed_id_types(reference, tmp_path):
    tables = _arrow(reference)
    root = _write_parquet(tmp_path, {n: t for n, t in tables.items() if n != "claims"})
    (root / "claims").mkdir()
    claims = tables["claims"]
    first = claims.slice(0, 2)
    second = claims.slice(2).select(list(reversed(claims.column_names)))
    second = _replace(second, "claim_id", second["claim_id"].cast(pa.int64()))
    pq.write_table(first, root / "claims" / "part-00000.parquet")
    pq.write_table(second, root / "claims" / "part-00001.parquet")
    loaded = load_batch(root)
    _assert_same(loaded, reference)
    with pytest.raises(BatchError, match=r"claim_id 330102199001011237 \(claims/part-00001.parquet row 2\)"):
        bad = _replace(second, "fund_paid", pa.array([10.0, 999.0]))
        pq.write_table(bad, root / "claims" / "part-00001.parquet")
        load_batch(root)


def test_pandas_written_parquet(reference, tmp_path):
    """pandas.to_parquet of frames built the obvious way: datetime64[ns], object strings, an index."""
    root = tmp_path / "b"
    root.mkdir()
    for name, table in TABLES.items():
        frame = getattr(reference, name).copy()
        for c in table.columns:
            if c.kind == "date":
                frame[c.name] = frame[c.name].astype("datetime64[ns]")
            elif c.kind == "enum":
                frame[c.name] = frame[c.name].astype(object)
        frame.index = frame.index + 100  # a non-default index is written as __index_level_0__ metadata
        frame.to_parquet(root / f"{name}.parquet")
    _assert_same(load_batch(root), reference)


def test_csv_as_other_programs_write_it(reference, tmp_path):
    """BOM, CRLF, quoted fields, TRUE/False, money without decimals or in exponent form, a pandas index column."""
    root = tmp_path / "b"
    root.mkdir()
    for name, text in NUMERIC.items():
        rows = Tables({name: text})[name]
        if name == "patients":
            for r in rows[1:]:
                r[4] = {"true": "TRUE", "false": "False", "0": "0"}[r[4]]
        if name == "claims":
            rows[2][8] = "8e1"  # 80.00 as some writers spell it
            rows[2][9] = "80"
        lines = [",".join(f'"{v}"' if i % 2 else v for i, v in enumerate(r)) for r in rows]
        if name == "items":
            lines = [",".join(["", *lines[0].split(",")])] + [f"{i}," + line for i, line in enumerate(lines[1:])]
        (root / f"{name}.csv").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    loaded = load_batch(root)
    _assert_same(loaded, reference)
    assert any("extra column ''" in w for w in loaded.warnings)


def test_unknown_extra_columns_are_kept_with_a_warning(reference, tmp_path):
    tables = _arrow(reference)
    tables["claims"] = tables["claims"].append_column("hospital_note", pa.array(["a", None, "c", "d"]))
    loaded = load_batch(_write_parquet(tmp_path, tables))
    _assert_same(loaded, reference)
    assert loaded.claims["hospital_note"].tolist()[0] == "a"
    assert any("hospital_note" in w for w in loaded.warnings)


def test_validate_batch_accepts_frames_built_in_memory(reference):
    frames = {name: getattr(reference, name).copy() for name in TABLES}
    frames["claims"]["diagnosis"] = frames["claims"]["diagnosis"].astype(object)
    frames["patients"]["birth_year"] = frames["patients"]["birth_year"].astype("int32")
    batch = type(reference)(**frames, source="memory")
    _assert_same(validate_batch(batch), reference)
    frames["claims"].loc[1, "fund_paid"] = np.nan
    with pytest.raises(BatchError, match=r"claims\.fund_paid breaks the rule 'must not be empty' in 1 row: claim_id 330102199001011235 \(claims row 2\)"):
        validate_batch(type(reference)(**frames, source="memory"))


def test_spark_style_part_folder(reference, tmp_path):
    """part-*.snappy.parquet with _SUCCESS, .crc and macOS ._ files beside them."""
    tables = _arrow(reference)
    root = _write_parquet(tmp_path, {n: t for n, t in tables.items() if n != "items"})
    folder = root / "items"
    folder.mkdir()
    pq.write_table(tables["items"].slice(0, 4), folder / "part-00000-abc.snappy.parquet", compression="snappy")
    pq.write_table(tables["items"].slice(4), folder / "part-00001-abc.snappy.parquet", compression="snappy")
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / ".part-00000-abc.snappy.parquet.crc").write_bytes(b"crc")
    (folder / "._part-00000-abc.snappy.parquet").write_bytes(b"\x00\x05\x16\x07")
    _assert_same(load_batch(root), reference)
    for part in folder.glob("part-*"):
        part.unlink()
    (folder / "region=3301").mkdir()
    with pytest.raises(BatchError, match=r"items: folder items/ holds no .parquet or .csv parts \(subfolders"):
        load_batch(root)


def test_parquet_with_a_column_twice_is_refused(reference, tmp_path):
    tables = _arrow(reference)
    claims = tables["claims"]
    tables["claims"] = pa.Table.from_arrays(claims.columns + [claims["fund_paid"]], names=claims.column_names + ["fund_paid"])
    with pytest.raises(BatchError, match=r"claims: claims\.parquet has the column 'fund_paid' more than once"):
        load_batch(_write_parquet(tmp_path, tables))


_ODD_ARRAYS = {
    "int8": pa.array([1, -2, None, 4], pa.int8()),
    "uint64": pa.array([1, 2**64 - 1, None, 0], pa.uint64()),
    "float16": pa.array(np.array([1.5, np.nan, -0.0, 65504], dtype=np.float16), pa.float16()),
    "float64_inf": pa.array([np.inf, -np.inf, np.nan, 1e308]),
    "decimal256": pa.array([Decimal("1.005"), None, Decimal("-3"), Decimal("1e20")], pa.decimal256(40, 3)),
    "binary_not_utf8": pa.array([b"\xff\xfe", b"K1", None, b"\x00"], pa.binary()),
    "bool": pa.array([True, False, None, True]),
    "date32_extremes": pa.array([-719162, 2932896, None, 0], pa.date32()),
    "timestamp_s_far": pa.array([-62135596800, 253402300799, None, 0], pa.timestamp("s")),
    "timestamp_ns_tz": pa.array([0, None, 1, 2], pa.timestamp("ns", tz="Asia/Shanghai")),
    "time64": pa.array([0, 1, None, 2], pa.time64("us")),
    "duration": pa.array([0, 1, None, 2], pa.duration("s")),
    "list": pa.array([[1], [], None, [2, 3]]),
    "struct": pa.array([{"a": 1}, {"a": None}, None, {"a": 2}]),
    "map": pa.array([[("k", 1)], [], None, [("j", 2)]], pa.map_(pa.string(), pa.int64())),
    "dictionary_int": pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 0], pa.int8()), pa.array([7, 8])),
    "null": pa.nulls(4),
    "large_binary": pa.array([b"a", b"b", None, b"c"], pa.large_binary()),
}


@pytest.mark.parametrize("kind", sorted(_ODD_ARRAYS))
def test_any_arrow_type_in_any_column_is_refused_or_loaded_never_crashes(reference, tmp_path, kind):
    """Every contract column of claims and items stored as an odd Arrow type, one table at a time."""
    for table_name in ("claims", "items"):
        tables = _arrow(reference)
        table = tables[table_name]
        n = table.num_rows
        odd = _ODD_ARRAYS[kind]
        column = pa.concat_arrays([odd] * (n // 4 + 1)).slice(0, n)
        tables[table_name] = pa.Table.from_arrays([column] * table.num_columns, names=table.column_names)
        root = _write_parquet(tmp_path / f"{kind}-{table_name}", tables)
        try:
            load_batch(root)
        except BatchError as exc:
            assert "\n" not in str(exc) and str(exc).endswith("Nothing was written.")
        batch = None
        try:
            batch = load_batch(root, on_bad_rows="reject")
        except BatchError:
            pass
        if batch is not None:
            for name in TABLES:
                read = pq.read_metadata(root / f"{name}.parquet").num_rows
                assert len(getattr(batch, name)) + int((batch.rejects["table"] == name).sum()) == read

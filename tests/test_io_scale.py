"""The batch boundary at scale: no Python work per row, and the odds and ends of messages and locations.

A batch of 10M claims and 30M items must not be walked row by row in Python.
Timing tests are flaky on shared machines, so instead these count the Python
function calls ``load_batch`` makes: ten times the rows must not mean
(noticeably) more calls, whether the batch is clean or has many bad rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bad_batches import CASES_BY_NAME
from fraudkit.io import TABLES, Batch, BatchError, Violation, load_batch, write_batch
from fraudkit.io._read import Locator, _Segment
from fraudkit.io._validate import _rules, _schema, check_values, coerce_table


def bulk_batch(n_claims: int, seed: int = 0, bad: float = 0.0) -> Batch:
    """A valid batch of ``n_claims`` claims with three items each; ``bad`` of the claims and items broken."""
    rng = np.random.default_rng(seed)
    n_pat, n_prov, k = max(n_claims // 10, 1), 50, 3
    patients = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n_pat)], "birth_year": rng.integers(1930, 2020, n_pat),
                             "sex": rng.choice(["M", "F"], n_pat), "scheme": "RBMI", "retired": False, "region": "3301"})
    providers = pd.DataFrame({"provider_id": [f"H{i}" for i in range(n_prov)], "provider_type": "hospital",
                              "tier": rng.integers(1, 4, n_prov), "region": "3301", "beds": 100})
    claim_id = np.array([f"K{i}" for i in range(n_claims)], dtype=object)
    admit = (np.datetime64("2024-01-01") + rng.integers(0, 300, n_claims).astype("timedelta64[D]")).astype("datetime64[s]")
    quantity = rng.integers(1, 5, n_claims * k).astype(float)
    price = rng.integers(100, 10000, n_claims * k) / 100
    amount = np.round(quantity * price, 2)
    total = np.round(amount.reshape(-1, k).sum(1), 2)
    fund = np.round(total * 0.6, 2)
    claims = pd.DataFrame({
        "claim_id": claim_id, "patient_id": [f"P{i}" for i in rng.integers(0, n_pat, n_claims)],
        "provider_id": [f"H{i}" for i in rng.integers(0, n_prov, n_claims)], "doctor_id": "D1", "care_type": "outpatient",
        "admit_date": admit, "discharge_date": admit, "diagnosis": "J18.9", "total_amount": total,
        "eligible_amount": total, "fund_paid": fund, "self_paid": np.round(total - fund, 2)})
    items = pd.DataFrame({
        "claim_id": np.repeat(claim_id, k), "line_no": np.tile(np.arange(1, k + 1), n_claims), "item_code": "D1",
        "item_kind": "drug", "quantity": quantity, "unit_price": price, "amount": amount, "service_date": np.repeat(admit, k)})
    if bad:
        broken = rng.random(n_claims) < bad
        claims.loc[broken, "fund_paid"] = claims.loc[broken, "eligible_amount"] + 1
        claims.loc[broken, "self_paid"] = claims.loc[broken, "total_amount"] - claims.loc[broken, "fund_paid"]
        items.loc[rng.random(len(items)) < bad, "item_kind"] = "herbal"
    return Batch(patients, providers, claims, items)


def _python_calls(fn) -> int:
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


@pytest.mark.parametrize("fmt,bad", [("parquet", 0.0), ("csv", 0.0), ("parquet", 0.1)])
def test_no_python_work_per_row(tmp_path, fmt, bad):
    small = write_batch(bulk_batch(2_000, bad=bad), tmp_path / "small", fmt=fmt)
    large = write_batch(bulk_batch(20_000, bad=bad), tmp_path / "large", fmt=fmt)
    policy = "reject" if bad else "refuse"
    load_batch(small, on_bad_rows=policy)  # warm caches and imports
    batch = load_batch(large, on_bad_rows=policy)
    if bad:
        assert len(batch.rejects) > 5_000  # thousands of rejected rows, not a handful
    few = _python_calls(lambda: load_batch(small, on_bad_rows=policy))
    many = _python_calls(lambda: load_batch(large, on_bad_rows=policy))
    # 10x the rows (60k -> 600k cells per column); per-row Python would mean >= 10x the calls.
    assert many < few * 1.3 + 500, (few, many)


def test_refusal_of_many_bad_rows_is_cheap_and_short(tmp_path):
    large = write_batch(bulk_batch(20_000, bad=0.2), tmp_path / "large")
    calls = _python_calls(lambda: pytest.raises(BatchError, load_batch, large))
    assert calls < 60_000, calls
    with pytest.raises(BatchError) as info:
        load_batch(large)
    message = str(info.value)
    assert len(message) < 2_000 and "\n" not in message
    assert "items.item_kind breaks the rule 'must be one of drug/" in message
    assert " more" in message  # 5 examples shown, the rest counted


def test_locator_across_parts_and_formats():
    root = Path("/batch")
    loc = Locator((_Segment(root / "claims" / "a.csv", 0, 3, True),
                   _Segment(root / "claims" / "b.parquet", 3, 2, False),
                   _Segment(root / "claims" / "c.csv", 5, 4, True)), root)
    assert [loc.where(i) for i in (0, 2, 3, 4, 5, 8)] == [
        "claims/a.csv line 2", "claims/a.csv line 4", "claims/b.parquet row 1", "claims/b.parquet row 2",
        "claims/c.csv line 2", "claims/c.csv line 5"]
    assert list(loc.where_many(np.array([8, 0, 4]))) == ["claims/c.csv line 5", "claims/a.csv line 2", "claims/b.parquet row 2"]
    assert len(loc.where_many(np.array([], dtype=np.int64))) == 0


def test_message_grammar():
    one = Violation("claims", "fund_paid", "must be ≥ 0", np.array([4]), ["claim_id K5 (claims.csv line 6)"])
    many = Violation("claims", "fund_paid", "must be ≥ 0", np.arange(1234), [f"claim_id K{i}" for i in range(5)])
    assert one.describe() == "claims.fund_paid breaks the rule 'must be ≥ 0' in 1 row: claim_id K5 (claims.csv line 6)"
    assert many.describe().endswith("in 1,234 rows: claim_id K0, claim_id K1, claim_id K2, claim_id K3, claim_id K4 and 1,229 more")
    table = Violation("items", " amount", "unknown column")
    assert table.describe() == "items.' amount': unknown column"
    five = [Violation("claims", None, f"problem {i}") for i in range(5)]
    assert str(BatchError("b", five)).endswith("; and 1 more problem. Nothing was written.")
    assert str(BatchError("b", five + five)).endswith("; and 6 more problems. Nothing was written.")
    assert str(BatchError("b", five[:1])) == "Batch b is refused: claims: problem 0. Nothing was written."


@pytest.mark.parametrize("name", ["fund_paid_above_eligible", "unknown_care_type", "fractional_cents",
                                  "amount_not_quantity_times_price", "discharge_before_admission", "tier_out_of_range"])
def test_pandera_schema_states_the_same_rules(name, tmp_path):
    """``_schema`` (pandera, for interactive use) and the vectorised ``check_values`` agree on the corpus."""
    import pandera.pandas as pandera

    from fraudkit.io._read import find_table, read_table

    case = CASES_BY_NAME[name]
    folder = tmp_path / name
    folder.mkdir()
    case.build(folder)
    found = {}
    for table_name, table in TABLES.items():
        raw, loc = read_table(folder, table_name, find_table(folder, table_name))
        frame, _, _ = coerce_table(table, raw, loc)
        fast = {(v.column, v.rule): set(v.rows.tolist()) for v in check_values(table, frame, loc) if "unique" not in v.rule}
        try:
            _schema(table).validate(frame[list(table.column_names)], lazy=True)
            slow = {}
        except pandera.errors.SchemaErrors as exc:
            cases = exc.failure_cases
            rule_column = {rule: col for col, rule, _, whole in _rules(table) if whole}
            slow = {}
            for _, row in cases.iterrows():
                key = (rule_column.get(row["check"], row["column"]), row["check"])
                slow.setdefault(key, set()).add(int(row["index"]))
        assert fast == slow, (table_name, fast, slow)
        found.update(fast)
    assert found, "the case breaks a value rule"
    assert any(column in " ".join(case.expect) for column, _ in found)


def test_csv_with_every_line_ragged_is_refused_without_a_call_per_line(tmp_path):
    from bad_batches import VALID, write_valid

    header = VALID["items"].split("\n")[0]
    line = "K1,1,B001,bed,3,100.00,300.00,2024-03-01,surplus\n"
    roots = {}
    for n in (500, 50_000):
        roots[n] = write_valid(tmp_path / str(n))
        (roots[n] / "items.csv").write_text(header + "\n" + line * n)
    with pytest.raises(BatchError, match=r"items\.csv line 2 has 9 fields where the header names 8 \(a comma or a quote "
                                         r"out of place\), and at least 4 more lines too\. Nothing"):
        load_batch(roots[50_000])
    few, many = (_python_calls(lambda r=roots[n]: pytest.raises(BatchError, load_batch, r)) for n in (500, 50_000))
    assert many < few + 200, (few, many)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 26])
def test_empty_line_scan_agrees_with_a_plain_reference(tmp_path, monkeypatch, chunk):
    import random

    import fraudkit.io._read as read

    monkeypatch.setattr(read, "_SCAN_CHUNK", chunk)
    rng = random.Random(chunk)
    for i in range(150):
        text = b"h" + b"".join(rng.choice([b"a", b"\n", b"\r\n", b"bc"]) for _ in range(rng.randint(0, 30)))
        path = tmp_path / f"{i}.csv"
        path.write_bytes(text)
        lines = text.split(b"\n")[:-1] if text.endswith(b"\n") else text.split(b"\n")
        blanks = [n + 1 for n, line in enumerate(lines) if line in (b"", b"\r")]
        want = [b - k for k, b in enumerate(blanks)]
        assert read._blank_line_slots_cached(str(path), len(text), i).tolist() == want, text

"""Turn raw tables into typed ones and check every rule of the contract.

Three layers, each reporting :class:`Violation` objects with the offending rows:

1. ``coerce_table``: column presence and parsing (a CSV cell that is not a number, a date, a bool).
2. ``_column_schema``: per-table value rules, declared with pandera (enums, ranges, cents,
   uniqueness, and the row-wise money and date rules).
3. ``_cross_table``: foreign keys, items summing to their claim, service dates inside the stay.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ._errors import Violation
from ._read import Locator
from ._schema import NON_EMPTY, TABLES, Column, Table

MAX_EXAMPLES = 5
_STR = pd.StringDtype("pyarrow", na_value=np.nan)
DATE_DTYPE = "datetime64[s]"


# --------------------------------------------------------------------------- parsing
def _as_str(raw: pd.Series) -> pd.Series:
    if isinstance(raw.dtype, pd.StringDtype) and raw.dtype.storage == "pyarrow":
        return raw
    out = raw.astype(_STR) if raw.dtype != object else raw.map(lambda v: v if v is None or (isinstance(v, float) and np.isnan(v)) else str(v), na_action="ignore").astype(_STR)
    if pd.api.types.is_float_dtype(raw.dtype):
        # ids stored as floats by another program (1.0) read back as "1".
        whole = raw.notna() & (raw == np.floor(raw))
        out = out.where(~whole, raw[whole].astype("int64").astype(str).astype(_STR))
    return out


def _parse(column: Column, raw: pd.Series) -> tuple[pd.Series, pd.Series, str]:
    """Return (typed values, mask of cells that could not be parsed, rule they broke)."""
    kind = column.kind
    present = raw.notna()
    if kind in ("id", "str", "enum"):
        values = _as_str(raw)
        if kind != "enum":
            values = values.str.strip() if kind == "id" else values
        return values, pd.Series(False, index=raw.index), ""
    if kind in ("int", "money", "decimal"):
        if pd.api.types.is_bool_dtype(raw.dtype):
            numbers = raw.astype("float64")
        elif pd.api.types.is_numeric_dtype(raw.dtype):
            numbers = raw.astype("float64")
        else:
            numbers = pd.to_numeric(_as_str(raw).str.strip(), errors="coerce").astype("float64")
        bad = present & numbers.isna()
        if kind == "int":
            fractional = numbers.notna() & (numbers != np.floor(numbers))
            return numbers, bad | fractional, "must be a whole number"
        bad |= present & ~np.isfinite(numbers.fillna(0.0))
        return numbers, bad, "must be a number"
    if kind == "date":
        if pd.api.types.is_datetime64_any_dtype(raw.dtype):
            dates = raw.dt.tz_localize(None) if getattr(raw.dt, "tz", None) else raw
            dates = dates.dt.floor("D").astype(DATE_DTYPE)
        else:
            dates = pd.to_datetime(_as_str(raw).str.strip(), format="%Y-%m-%d", errors="coerce").astype(DATE_DTYPE)
        return dates, present & dates.isna(), "must be a date YYYY-MM-DD"
    if kind == "bool":
        if pd.api.types.is_bool_dtype(raw.dtype):
            return raw.astype("boolean"), pd.Series(False, index=raw.index), ""
        text = _as_str(raw).str.strip().str.lower()
        mapped = text.map({"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False})
        return mapped.astype("boolean"), present & mapped.isna(), "must be true/false or 1/0"
    raise AssertionError(kind)


def _examples(table: Table, frame: pd.DataFrame, locator: Locator, rows: np.ndarray) -> list[str]:
    out = []
    for pos in rows[:MAX_EXAMPLES]:
        pos = int(pos)
        key = frame[table.key].iat[pos] if table.key in frame.columns and pos < len(frame) else None
        ident = f"{table.key} {key}" if key is not None and key == key else f"row {pos + 1}"
        if table.name == "items" and "line_no" in frame.columns:
            ident += f" line_no {frame['line_no'].iat[pos]:g}" if pd.notna(frame["line_no"].iat[pos]) else ""
        out.append(f"{ident} ({locator.where(pos)})")
    return out


def violation(table: Table, column: str | None, rule: str, frame: pd.DataFrame, locator: Locator, mask) -> Violation | None:
    rows = np.flatnonzero(np.asarray(mask, dtype=bool))
    if len(rows) == 0:
        return None
    return Violation(table.name, column, rule, rows, _examples(table, frame, locator, rows))


def coerce_table(table: Table, raw: pd.DataFrame, locator: Locator) -> tuple[pd.DataFrame, list[Violation], list[str]]:
    """Check columns and parse cells into the contract's types.

    Returns the typed frame (unparseable cells become null), the violations and
    warnings (e.g. unknown extra columns, which are kept but not used).
    """
    violations: list[Violation] = []
    warnings: list[str] = []
    raw = raw.reset_index(drop=True)
    required = table.column_names
    folded = {c.strip().lower(): c for c in required}
    missing = [c for c in required if c not in raw.columns]
    for extra in (c for c in raw.columns if c not in required):
        near = folded.get(str(extra).strip().lower())
        if near is not None:
            violations.append(Violation(table.name, str(extra), f"unknown column {extra!r}: the contract names it {near!r}"))
        else:
            warnings.append(f"{table.name}: extra column {extra!r} is not part of the contract and is ignored")
    for name in missing:
        if not any(v.column and str(v.column).strip().lower() == name for v in violations):
            violations.append(Violation(table.name, name, "required column is missing"))
    if violations:
        return raw, violations, warnings
    if table.name in NON_EMPTY and len(raw) == 0:
        return raw, [Violation(table.name, None, "has no rows")], warnings

    typed = {}
    for column in table.columns:
        values, bad, rule = _parse(column, raw[column.name])
        typed[column.name] = values
        if bad.any():
            violations.append(violation(table, column.name, rule, raw, locator, bad))
        if not column.nullable:
            empty = raw[column.name].isna()
            if column.kind in ("id", "str", "enum"):
                empty |= values.fillna("").str.strip().eq("")
            if empty.any():
                violations.append(violation(table, column.name, "must not be empty", raw, locator, empty))
    frame = pd.DataFrame(typed)
    frame = frame.assign(**{c: raw[c] for c in raw.columns if c not in required})
    return frame, violations, warnings


# --------------------------------------------------------------------------- value rules (pandera)
def _cents(s: pd.Series) -> pd.Series:
    return ((s * 100 - np.round(s * 100)).abs() < 1e-6) | s.isna()


def _cents_of(s: pd.Series) -> pd.Series:
    return np.round(s * 100).astype("Int64")


def _column_checks(column: Column) -> list[pa.Check]:
    checks = []
    if column.kind == "enum":
        allowed = "/".join(column.values)
        checks.append(pa.Check(lambda s, v=column.values: s.isin(v) | s.isna(), name=f"must be one of {allowed}"))
    if column.min is not None:
        op = ">" if column.min_exclusive else "≥"
        fn = (lambda s, m=column.min: (s > m) | s.isna()) if column.min_exclusive else (lambda s, m=column.min: (s >= m) | s.isna())
        checks.append(pa.Check(fn, name=f"must be {op} {column.min:g}"))
    if column.max is not None:
        checks.append(pa.Check(lambda s, m=column.max: (s <= m) | s.isna(), name=f"must be ≤ {column.max:g}"))
    if column.kind == "money":
        checks.append(pa.Check(_cents, name="must be whole cents (2 decimals)"))
    return checks


def _ok_where_null(result: pd.Series, *cols: pd.Series) -> pd.Series:
    null = cols[0].isna()
    for c in cols[1:]:
        null |= c.isna()
    return result | null


#: Row-wise rules between columns of one table: (table, column named in messages, rule, check).
_ROW_RULES = {
    "claims": [
        ("eligible_amount", "eligible_amount ≤ total_amount",
         lambda d: _ok_where_null(_cents_of(d.eligible_amount) <= _cents_of(d.total_amount), d.eligible_amount, d.total_amount)),
        ("fund_paid", "fund_paid ≤ eligible_amount",
         lambda d: _ok_where_null(_cents_of(d.fund_paid) <= _cents_of(d.eligible_amount), d.fund_paid, d.eligible_amount)),
        ("self_paid", "self_paid = total_amount − fund_paid",
         lambda d: _ok_where_null(_cents_of(d.self_paid) == _cents_of(d.total_amount) - _cents_of(d.fund_paid), d.self_paid, d.total_amount, d.fund_paid)),
        ("discharge_date", "discharge_date ≥ admit_date",
         lambda d: _ok_where_null(d.discharge_date >= d.admit_date, d.discharge_date, d.admit_date)),
    ],
    "items": [
        ("amount", "amount = quantity × unit_price to the cent",
         lambda d: _ok_where_null((_cents_of(d.amount) - _cents_of(d.quantity * d.unit_price)).abs() <= 1, d.amount, d.quantity, d.unit_price)),
    ],
}


def _schema(table: Table) -> pa.DataFrameSchema:
    columns = {
        c.name: pa.Column(checks=_column_checks(c), nullable=True, unique=(table.unique == (c.name,)), required=True)
        for c in table.columns
    }
    checks = [pa.Check(fn, name=rule) for _, rule, fn in _ROW_RULES.get(table.name, [])]
    unique = list(table.unique) if len(table.unique) > 1 else None
    return pa.DataFrameSchema(columns, checks=checks, unique=unique, report_duplicates="all")


_SCHEMAS: dict[str, pa.DataFrameSchema] = {}


def check_values(table: Table, frame: pd.DataFrame, locator: Locator) -> list[Violation]:
    """Per-table value rules, declared as a pandera schema built from the contract."""
    schema = _SCHEMAS.get(table.name) or _SCHEMAS.setdefault(table.name, _schema(table))
    try:
        schema.validate(frame, lazy=True)
        return []
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    rule_column = {rule: col for col, rule, _ in _ROW_RULES.get(table.name, [])}
    cases = cases.assign(check=cases["check"].astype(str))
    named = cases["check"].map(rule_column)
    # A row-wise rule is reported by pandera once per column; name it by the column it is about.
    cases = cases.assign(column=named.where(named.notna(), cases["column"]))
    out = []
    for (column, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        rows = np.unique(pd.to_numeric(group["index"], errors="coerce").dropna().astype("int64").to_numpy())
        if check in ("field_uniqueness", "multiple_fields_uniqueness"):
            check = "must be unique"
            column = column if isinstance(column, str) and column in table.column_names else "+".join(table.unique)
        column = column if isinstance(column, str) else None
        mask = np.zeros(len(frame), dtype=bool)
        mask[rows[rows < len(frame)]] = True
        out.append(violation(table, column, check, frame, locator, mask) or Violation(table.name, column, check))
    return out


# --------------------------------------------------------------------------- rules across tables
def check_cross_tables(frames: dict[str, pd.DataFrame], locators: dict[str, Locator]) -> list[Violation]:
    patients, providers, claims, items = (frames[n] for n in ("patients", "providers", "claims", "items"))
    out: list[Violation | None] = []
    claims_t, items_t = TABLES["claims"], TABLES["items"]
    out.append(violation(claims_t, "patient_id", "must name a patient in patients", claims, locators["claims"],
                         ~claims.patient_id.isin(patients.patient_id) & claims.patient_id.notna()))
    out.append(violation(claims_t, "provider_id", "must name a provider in providers", claims, locators["claims"],
                         ~claims.provider_id.isin(providers.provider_id) & claims.provider_id.notna()))
    if len(items):
        known = items.claim_id.isin(claims.claim_id)
        out.append(violation(items_t, "claim_id", "must name a claim in claims", items, locators["items"],
                             ~known & items.claim_id.notna()))
        cents = _cents_of(items.amount).fillna(0).astype("int64")
        summed = cents.groupby(items.claim_id.to_numpy()).sum()
        claim_sum = claims.claim_id.map(summed)
        has_items = claim_sum.notna()
        mismatch = has_items & claims.total_amount.notna() & (claim_sum.fillna(0) != _cents_of(claims.total_amount).fillna(0).astype("int64"))
        out.append(violation(claims_t, "total_amount", "total_amount = sum of its items' amount", claims, locators["claims"], mismatch))
        span = claims.drop_duplicates("claim_id").set_index("claim_id")[["admit_date", "discharge_date"]]
        admit = items.claim_id.map(span.admit_date)
        discharge = items.claim_id.map(span.discharge_date)
        outside = known & items.service_date.notna() & admit.notna() & ((items.service_date < admit) | (items.service_date > discharge))
        out.append(violation(items_t, "service_date", "service_date within the claim's admit_date..discharge_date", items, locators["items"], outside))
    return [v for v in out if v is not None]


def check_frames(frames: dict[str, pd.DataFrame], locators: dict[str, Locator]) -> list[Violation]:
    """Value rules of every table, then the rules across tables (only when each table is sound enough)."""
    violations: list[Violation] = []
    for name, table in TABLES.items():
        violations += check_values(table, frames[name], locators[name])
    if not any(not v.row_level for v in violations):
        violations += check_cross_tables(frames, locators)
    return violations

"""Turn raw tables into typed ones and check every rule of the contract.

Three layers, each reporting :class:`Violation` objects with the offending rows:

1. ``coerce_table``: column presence and parsing (a CSV cell that is not a number, a date, a bool).
2. ``check_values``: per-table value rules (enums, ranges, cents, uniqueness, and the row-wise
   money and date rules), evaluated vectorised; ``_schema`` offers the same rules as a pandera schema.
3. ``_cross_table``: foreign keys, items summing to their claim, service dates inside the stay.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraudkit._threads import map_in_order, threads_for

from ._errors import Violation
from ._read import Locator
from ._schema import NON_EMPTY, TABLES, Column, Table

MAX_EXAMPLES = 5
_STR = pd.StringDtype("pyarrow", na_value=np.nan)
DATE_DTYPE = "datetime64[s]"


# --------------------------------------------------------------------------- parsing
def _as_str(raw: pd.Series) -> pd.Series:
    """The column as pyarrow-backed strings, without a Python call per row.

    Whole floats (an id column another program wrote as 1.0) read back as "1";
    everything else as ``str`` would spell it.
    """
    if isinstance(raw.dtype, pd.StringDtype) and raw.dtype.storage == "pyarrow":
        return raw if raw.dtype == _STR else raw.astype(_STR)
    if raw.dtype == object:
        try:
            arr = pa.array(raw.to_numpy(), from_pandas=True)
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            arr = None  # mixed objects: let pandas spell each one
        if arr is not None and (pa.types.is_string(arr.type) or pa.types.is_null(arr.type)):
            return pd.Series(arr.cast(pa.string()), index=raw.index, dtype=_STR)
        if arr is not None and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
            return _as_str(pd.Series(arr.to_pandas(), index=raw.index))
        return raw.astype(_STR)
    out = raw.astype(_STR)
    if pd.api.types.is_float_dtype(raw.dtype):
        # ids stored as floats by another program (1.0) read back as "1".
        values = raw.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(values) & (values == np.floor(values)) & (np.abs(values) < 2.0**63)
        if whole.any():
            out = out.where(~whole, pd.Series(values[whole].astype("int64"), index=raw.index[whole]).astype(_STR))
    return out


def _to_float(text: pd.Series) -> pd.Series:
    """Parse stripped strings as float64 (null where not a number); Arrow first, pandas for the odd cell."""
    try:
        parsed = pa.array(text, from_pandas=True).cast(pa.float64())
        return pd.Series(parsed.to_numpy(zero_copy_only=False), index=text.index, dtype="float64", copy=False)
    except (pa.ArrowException, ValueError, TypeError):
        return pd.to_numeric(text, errors="coerce").astype("float64")


_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _to_date(text: pd.Series) -> pd.Series:
    """Parse stripped ``YYYY-MM-DD`` strings as ``datetime64[s]`` (NaT where not such a date)."""
    arr = pa.array(text, from_pandas=True)
    try:
        parsed = arr.cast(pa.date32()).cast(pa.timestamp("s"))
        return pd.Series(parsed.to_numpy(zero_copy_only=False), index=text.index, copy=False).astype(DATE_DTYPE)
    except (pa.ArrowException, ValueError, TypeError):
        pass  # some cell is not an ISO date: parse the well-formed ones, the rest become NaT
    iso = pc.fill_null(pc.match_substring_regex(arr, _ISO_DATE), False).to_numpy(zero_copy_only=False)
    out = pd.Series(pd.NaT, index=text.index, dtype=DATE_DTYPE)
    if iso.any():
        parsed = pd.to_datetime(text[iso], format="%Y-%m-%d", errors="coerce")
        out[iso] = parsed.astype(DATE_DTYPE)
    return out


def _day_of(dates: pd.Series) -> pd.Series:
    """Naive datetimes floored to their day, as :data:`DATE_DTYPE`. A date column read from Parquet is
    at midnight already: that is checked in one pass over the integers, a fraction of what flooring
    a million datetimes costs."""
    values = dates.to_numpy()
    if values.dtype.kind == "M":
        per_day = np.timedelta64(1, "D") // np.timedelta64(1, np.datetime_data(values.dtype)[0])
        if ((values.view("i8") % per_day == 0) | np.isnat(values)).all():
            return dates.astype(DATE_DTYPE)
    return dates.dt.floor("D").astype(DATE_DTYPE)


def _blank(text: pd.Series, null: bool = False, stripped: bool = False) -> np.ndarray:
    """Where a string column holds "" after stripping whitespace (``null``: what a null counts as;
    ``stripped``: the text is stripped already), in Arrow."""
    arr = _arrow_of(text)
    blank = pc.equal(arr if stripped else pc.utf8_trim_whitespace(arr), "")
    return pc.fill_null(blank, null).to_numpy(zero_copy_only=False).astype(bool, copy=False)


_BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False}


def _parse(column: Column, raw: pd.Series) -> tuple[pd.Series, pd.Series, str]:
    """Return (typed values, mask of cells that could not be parsed, rule they broke).

    Cells that cannot be parsed come back null, so later rules never see them.
    """
    kind = column.kind
    present = raw.notna()
    no = pd.Series(False, index=raw.index)
    if kind in ("id", "str", "enum"):
        values = _as_str(raw)
        if kind == "id":
            values = values.str.strip()
            blank = _blank(values, stripped=True)  # a blank id is a missing id
            if blank.any():
                values = values.mask(blank)
        return values, no, ""
    if kind in ("int", "money", "decimal"):
        if pd.api.types.is_bool_dtype(raw.dtype) or pd.api.types.is_numeric_dtype(raw.dtype):
            numbers = raw.astype("float64")
        else:
            numbers = _to_float(_as_str(raw).str.strip())
        values, given = numbers.to_numpy(dtype="float64", na_value=np.nan), present.to_numpy()
        with np.errstate(invalid="ignore"):
            bad = given & ~np.isfinite(values)
            if kind == "int":  # whole, and small enough to be held exactly as int64 and float64
                bad |= given & ~bad & ((values != np.floor(values)) | (np.abs(values) >= 2.0**53))
        rule = "must be a whole number" if kind == "int" else "must be a number"
        if bad.any():
            values = np.where(bad, np.nan, values)
        return (pd.Series(values, index=raw.index, dtype="float64", copy=False),  # (pandas copies an array unless told)
                pd.Series(bad, index=raw.index, copy=False), rule)
    if kind == "date":
        if pd.api.types.is_datetime64_any_dtype(raw.dtype):
            dates = _day_of(raw.dt.tz_localize(None) if getattr(raw.dt, "tz", None) else raw)
        else:
            dates = _to_date(_as_str(raw).str.strip())
        return dates, present & dates.isna(), "must be a date YYYY-MM-DD"
    if kind == "bool":
        if pd.api.types.is_bool_dtype(raw.dtype):
            return raw.astype("boolean"), no, ""
        text = _as_str(raw).str.strip().str.lower()
        mapped = text.map(_BOOL_TEXT).astype("boolean")
        return mapped, present & mapped.isna(), "must be true/false or 1/0"
    raise AssertionError(kind)


def _fmt(value) -> str:
    """A cell as it should appear in a one-line message: whole floats without ".0", no line breaks, short."""
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and value == int(value):
        value = int(value)
    text = str(value)
    if not text.isprintable():
        text = repr(text)[1:-1]
    return text if len(text) <= 40 else text[:39] + "…"


def _missing(value) -> bool:
    """None/NaN/NA/NaT; False for anything else, even a list (pd.isna would answer per element)."""
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _examples(table: Table, frame: pd.DataFrame, locator: Locator, rows: np.ndarray) -> list[str]:
    out = []
    shown = rows[:MAX_EXAMPLES]
    where = locator.where_many(shown)
    for pos, loc in zip(shown, where):
        pos = int(pos)
        key = frame[table.key].iat[pos] if table.key in frame.columns and pos < len(frame) else None
        ident = f"{table.key} {_fmt(key)}" if not _missing(key) else f"row {pos + 1}"
        if table.name == "items" and "line_no" in frame.columns and pos < len(frame):
            line_no = frame["line_no"].iat[pos]
            ident += "" if _missing(line_no) else f" line_no {_fmt(line_no)}"
        out.append(f"{ident} ({loc})")
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
            violations.append(Violation(table.name, str(extra), f"unknown column {str(extra)!r} in the header: the contract names it {near!r}"))
        else:
            warnings.append(f"{table.name}: extra column {str(extra)!r} is not part of the contract; kept, but not checked or used")
    for name in missing:
        if not any(v.column and str(v.column).strip().lower() == name for v in violations):
            violations.append(Violation(table.name, name, "required column is missing"))
    if violations:
        return raw, violations, warnings
    if table.name in NON_EMPTY and len(raw) == 0:
        return raw, [Violation(table.name, None, "has no rows")], warnings

    def coerce(column: Column, cells: pd.Series) -> tuple[pd.Series, list[Violation]]:
        values, bad, rule = _parse(column, cells)
        found = []
        if bad.any():
            found.append(violation(table, column.name, rule, raw, locator, bad))
        if not column.nullable:
            empty = cells.isna()
            if column.kind == "id":  # ids come back stripped, and blank ones null
                empty |= values.isna()
            elif column.kind in ("str", "enum"):
                empty |= _blank(values, null=True)
            if empty.any():
                found.append(violation(table, column.name, "must not be empty", raw, locator, empty))
        return values, found

    cells = [raw[column.name] for column in table.columns]
    done = map_in_order(coerce, table.columns, cells, threads=threads_for(len(raw)))  # columns side by side
    typed = {}
    for column, (values, found) in zip(table.columns, done):  # in the contract's column order, as one by one
        typed[column.name] = values
        violations += found
    frame = pd.DataFrame(typed, index=raw.index, copy=False)
    extras = [c for c in raw.columns if c not in required]
    if extras:
        frame = pd.concat([frame, raw[extras]], axis=1)
    return frame, violations, warnings


# --------------------------------------------------------------------------- value rules
def _cents_of(s: pd.Series) -> pd.Series:
    """Money as a whole number of cents (float64, exact below 2**53 cents; NaN stays NaN)."""
    with np.errstate(over="ignore", invalid="ignore"):  # 1e308 yuan becomes inf cents, and fails the rules
        return pd.Series(np.round(s.to_numpy(dtype="float64", na_value=np.nan) * 100), index=s.index, copy=False)


def _cents(s: pd.Series) -> pd.Series:
    with np.errstate(over="ignore", invalid="ignore"):
        c = s.to_numpy(dtype="float64", na_value=np.nan) * 100
        # A few ulps of slack so that 1234567.89 (not exactly representable) still counts as whole cents.
        ok = np.abs(c - np.round(c)) <= 1e-6 + np.abs(c) * 1e-15
    return pd.Series(ok | np.isnan(c), index=s.index, copy=False)


def _column_rules(column: Column) -> list[tuple[str, Callable[[pd.Series], pd.Series]]]:
    """(rule, check) pairs of one column; a check returns True where the value is fine (null counts as fine)."""
    rules = []
    if column.kind == "enum":
        allowed = "/".join(column.values)
        rules.append((f"must be one of {allowed}", lambda s, v=column.values: pd.Series(isin(s, pa.array(v)), index=s.index, copy=False) | s.isna()))
    if column.min is not None:
        op = ">" if column.min_exclusive else "≥"
        fn = (lambda s, m=column.min: (s > m) | s.isna()) if column.min_exclusive else (lambda s, m=column.min: (s >= m) | s.isna())
        rules.append((f"must be {op} {column.min:g}", fn))
    if column.max is not None:
        rules.append((f"must be ≤ {column.max:g}", lambda s, m=column.max: (s <= m) | s.isna()))
    if column.kind == "money":
        rules.append(("must be whole cents (2 decimals)", _cents))
    return rules


def _product(a: pd.Series, b: pd.Series) -> pd.Series:
    with np.errstate(over="ignore", invalid="ignore"):
        return a * b


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
         lambda d: _ok_where_null((_cents_of(d.amount) - _cents_of(_product(d.quantity, d.unit_price))).abs() <= 1, d.amount, d.quantity, d.unit_price)),
    ],
}


def _rules(table: Table) -> list[tuple[str, str, Callable, bool]]:
    """Every value rule of a table: (column named in messages, rule, check, whether the check takes the whole frame)."""
    rules = [(c.name, rule, fn, False) for c in table.columns for rule, fn in _column_rules(c)]
    return rules + [(column, rule, fn, True) for column, rule, fn in _ROW_RULES.get(table.name, [])]


def _schema(table: Table):
    """The same rules as a pandera schema, for checking a frame interactively (``_schema(TABLES["claims"]).validate(df)``).

    :func:`check_values` evaluates the rules directly instead: pandera formats every
    failure case in Python, which costs seconds per hundred thousand bad rows.
    """
    import pandera.pandas as pandera  # imported here: it costs every command a fifth of a second at start-up

    rules = _rules(table)
    columns = {c.name: pandera.Column(checks=[pandera.Check(fn, name=rule) for col, rule, fn, whole in rules
                                              if col == c.name and not whole], nullable=True, required=True)
               for c in table.columns}
    checks = [pandera.Check(fn, name=rule) for _, rule, fn, whole in rules if whole]
    return pandera.DataFrameSchema(columns, checks=checks)


def _duplicates(table: Table, frame: pd.DataFrame, locator: Locator) -> Violation | None:
    """Every row whose key (``claim_id``, or ``claim_id`` + ``line_no``) occurs more than once."""
    if not table.unique:
        return None
    dup = _duplicated_rows([frame[c] for c in table.unique])
    if dup is None:  # key space too large for one int64: let pandas hash the rows
        keys = frame[list(table.unique)]
        dup = keys.duplicated(keep=False).to_numpy() & keys.notna().all(axis=1).to_numpy()
    return violation(table, "+".join(table.unique), "must be unique", frame, locator, dup)


def _value_codes(s: pd.Series) -> tuple[np.ndarray, int]:
    """Integer code of each value (equal values, equal codes; -1 for null) and how many distinct values."""
    if isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
        encoded = pc.dictionary_encode(_arrow_of(s))  # Arrow's hash table: several times faster than pandas on strings
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks() if encoded.num_chunks else pa.array([], pa.dictionary(pa.int32(), pa.string()))
        return encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64), len(encoded.dictionary)
    codes, uniques = pd.factorize(s)
    return codes.astype(np.int64), len(uniques)


def _duplicated_rows(columns: list[pd.Series]) -> np.ndarray | None:
    """Rows whose key (the columns together, none null) occurs more than once; None when the key overflows int64.

    A batch's keys usually come in order (items grouped by claim, lines numbered up), and
    keys that strictly increase from row to row have no duplicates: comparing each row with the
    next proves it, without hashing. Otherwise the columns are coded as integers, packed into
    one int64 per row, and the packed keys are counted.
    """
    n = len(columns[0])
    if n < 2 or _strictly_increasing(columns):
        return np.zeros(n, dtype=bool)
    key, null, width = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool), 1
    for s in columns:
        codes, k = _value_codes(s)
        width *= k + 1
        if width >= 2**62:
            return None
        null |= codes < 0
        key = key * (k + 1) + codes + 1
    if bool((key[1:] > key[:-1]).all()):
        return np.zeros(n, dtype=bool)
    packed, _ = pd.factorize(key)
    return (np.bincount(packed)[packed] > 1) & ~null


def _strictly_increasing(columns: list[pd.Series]) -> bool:
    """True when no key is null and every row's key (compared column by column) is greater than the previous row's."""
    n = len(columns[0])
    greater, tied = np.zeros(n - 1, dtype=bool), np.ones(n - 1, dtype=bool)  # row i+1 against row i, so far
    for s in columns:
        if s.isna().any():
            return False
        if isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
            values = _arrow_of(s)  # compared as UTF-8 bytes, in Arrow
            before, after = values.slice(0, n - 1), values.slice(1)
            less = pc.less(before, after).to_numpy(zero_copy_only=False)
            equal = pc.equal(before, after).to_numpy(zero_copy_only=False)
        elif pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            values = s.to_numpy(dtype="float64")
            less, equal = values[:-1] < values[1:], values[:-1] == values[1:]
        else:
            return False
        greater |= tied & less
        tied &= equal
        if not (greater | tied).all():
            return False
    return bool(greater.all())


def check_values(table: Table, frame: pd.DataFrame, locator: Locator) -> list[Violation]:
    """Per-table value rules (ranges, enumerations, cents, the money and date rules) and uniqueness."""
    dup = _duplicates(table, frame, locator)
    out: list[Violation] = [dup] if dup else []
    for column, rule, check, whole in _rules(table):
        ok = check(frame if whole else frame[column])
        found = violation(table, column, rule, frame, locator, ~np.asarray(ok, dtype=bool))
        if found:
            out.append(found)
    return out


# --------------------------------------------------------------------------- rules across tables
def _arrow_of(values) -> pa.Array:
    return pa.array(values, from_pandas=True)


def positions_in(values: pd.Series, keys) -> np.ndarray:
    """For each value, the position of the first equal key, or -1 (nulls never match). Arrow, no Python per row."""
    if len(values) == 0:
        return np.empty(0, dtype=np.int64)
    keys = _arrow_of(keys)
    if len(keys) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    values = _arrow_of(values)
    if values.type != keys.type:
        values, keys = values.cast(pa.large_string()), keys.cast(pa.large_string())
    found = pc.index_in(values, value_set=keys, skip_nulls=True)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def isin(values: pd.Series, keys) -> np.ndarray:
    """``values.isin(keys)`` as a boolean array, computed in Arrow (pandas loops in Python for Arrow strings)."""
    return positions_in(values, keys) >= 0


#: The references between tables: (table, column) -> the table whose key it names.
REFERENCES = {("claims", "patient_id"): "patients", ("claims", "provider_id"): "providers", ("items", "claim_id"): "claims"}


def check_cross_tables(frames: dict[str, pd.DataFrame], locators: dict[str, Locator],
                       rows: dict | None = None) -> list[Violation]:
    """The rules across tables. ``rows``, if given, receives the row each reference names
    (``rows[(table, column)]``, -1 where none: see :data:`REFERENCES`), looked up once here for
    everything downstream (:meth:`fraudkit.io.Batch.rows_of`)."""
    claims, items = frames["claims"], frames["items"]
    found = {} if rows is None else rows
    out: list[Violation | None] = []
    claims_t, items_t = TABLES["claims"], TABLES["items"]
    # the lookups of every reference side by side
    keys = list(REFERENCES)
    found.update(zip(keys, map_in_order(lambda key: positions_in(frames[key[0]][key[1]], frames[REFERENCES[key]][key[1]]),
                                        keys, threads=threads_for(len(items)))))
    for column, entity in (("patient_id", "patient"), ("provider_id", "provider")):
        at = found[("claims", column)]
        out.append(violation(claims_t, column, f"must name a {entity} in {REFERENCES[('claims', column)]}", claims,
                             locators["claims"], (at < 0) & claims[column].notna().to_numpy()))
    if len(items):
        claim_of = found[("items", "claim_id")]  # row of each item's claim (first one if duplicated)
        known = claim_of >= 0
        out.append(violation(items_t, "claim_id", "must name a claim in claims", items, locators["items"],
                             ~known & items.claim_id.notna().to_numpy()))
        # Sums of whole cents in float64 are exact below 2**53 cents; a bad amount counts as 0.
        cents = _cents_of(items.amount).fillna(0.0).to_numpy()
        n = len(claims)
        summed = np.bincount(claim_of[known], weights=cents[known], minlength=n)
        has_items = np.bincount(claim_of[known], minlength=n) > 0
        total = _cents_of(claims.total_amount).to_numpy()
        with np.errstate(invalid="ignore"):
            mismatch = has_items & ~np.isnan(total) & (summed != total)
        out.append(violation(claims_t, "total_amount", "total_amount = sum of its items' amount", claims, locators["claims"], mismatch))
        where = np.where(known, claim_of, 0)
        admit = claims.admit_date.to_numpy()[where]
        discharge = claims.discharge_date.to_numpy()[where]
        service = items.service_date.to_numpy()
        dated = known & ~np.isnat(service) & ~np.isnat(admit) & ~np.isnat(discharge)
        outside = dated & ((service < admit) | (service > discharge))
        out.append(violation(items_t, "service_date", "service_date within the claim's admit_date..discharge_date", items, locators["items"], outside))
    return [v for v in out if v is not None]


def check_frames(frames: dict[str, pd.DataFrame], locators: dict[str, Locator],
                 rows: dict | None = None) -> list[Violation]:
    """Value rules of every table, then the rules across tables (only when each table is sound enough;
    ``rows`` as in :func:`check_cross_tables`)."""
    violations: list[Violation] = []
    for name, table in TABLES.items():
        violations += check_values(table, frames[name], locators[name])
    if not any(not v.row_level for v in violations):
        violations += check_cross_tables(frames, locators, rows)
    return violations

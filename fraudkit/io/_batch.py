"""The one batch loader and validator of fraudkit."""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from fraudkit.errors import FraudkitError

from ._errors import BatchError, Violation
from ._read import Locator, find_table, near_misses, read_table
from ._schema import LABEL_TABLES, TABLES, Table
from ._validate import REFERENCES, check_frames, check_values, coerce_table, isin, positions_in

OnBadRows = Literal["refuse", "reject"]

#: Columns of the rejects table written by ``--on-bad-rows reject``.
REJECT_COLUMNS = ["table", "row", "id", "location", "reason"]


@dataclass
class Labels:
    """Ground truth of a labelled batch (evaluation only; never read when scoring).

    Each frame has the entity id and ``fraud_type`` ("" for legitimate).
    """

    claims: pd.DataFrame
    providers: pd.DataFrame
    patients: pd.DataFrame | None = None

    def fraudulent(self, entity: str) -> pd.Series:
        """Boolean Series indexed by id: True where any scheme involves the entity as an actor."""
        frame = getattr(self, entity)
        if frame is None:
            raise ValueError(f"this batch has no labels/{entity} table")
        key = frame.columns[0]
        return frame.set_index(key)["fraud_type"].fillna("").astype(str).str.len().gt(0)


@dataclass
class Batch:
    """A validated claims batch: four typed DataFrames with the columns of the contract.

    ``rejects`` holds the rows set aside under ``on_bad_rows="reject"`` (empty otherwise),
    one row per rejected row (columns :data:`REJECT_COLUMNS`): ``table``; ``row``, its
    0-based position in the table as read (parts concatenated in file-name order);
    ``id``, the table's key (``claim_id`` for items); ``location``, file and line
    (CSV) or row (Parquet); ``reason``, ``table.column: rule`` for a row that broke
    a rule itself, or e.g. ``its claim K2 was rejected`` for one that depended on it.
    """

    patients: pd.DataFrame
    providers: pd.DataFrame
    claims: pd.DataFrame
    items: pd.DataFrame
    source: str = "<memory>"
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REJECT_COLUMNS))
    warnings: list[str] = field(default_factory=list)
    _rows: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in TABLES}

    def rows_of(self, table: str, column: str) -> np.ndarray:
        """The row of the table that ``table.column`` names, for each row of ``table`` (int64, -1 where none).

        ``rows_of("items", "claim_id")`` is each item line's claim, ``rows_of("claims", "patient_id")``
        and ``rows_of("claims", "provider_id")`` each claim's patient and provider: the lookups the
        validator made to check these references, kept by :func:`load_batch` so that features and
        the claims network do not hash every id again. Computed (and kept) on first use otherwise,
        and again whenever either table has been replaced since. Treat the array as read-only.

        >>> batch = load_batch("data/demo")                   # doctest: +SKIP
        >>> batch.claims.patient_id[3] == batch.patients.patient_id[batch.rows_of("claims", "patient_id")[3]]  # doctest: +SKIP
        True
        """
        ref = REFERENCES.get((table, column))
        if ref is None:
            raise ValueError(f"{table}.{column} names no other table; one of "
                             + ", ".join(f"{t}.{c}" for t, c in REFERENCES))
        kept = self._kept((table, column))
        if kept is not None:
            return kept
        frame, target = getattr(self, table), getattr(self, ref)
        rows = positions_in(frame[column], target[column])
        self._keep_rows({(table, column): rows})
        return rows

    def __getstate__(self) -> dict:
        # the kept lookups name their tables by weak reference, which cannot be pickled: they travel
        # as plain arrays, those still of the current tables, and are kept again on arrival
        state = {k: v for k, v in self.__dict__.items() if k != "_rows"}
        state["_kept_rows"] = {key: rows for key in self._rows if (rows := self._kept(key)) is not None}
        return state

    def __setstate__(self, state: dict) -> None:
        kept = state.pop("_kept_rows", {})
        self.__dict__.update(state)
        self._rows = {}
        self._keep_rows(kept)

    def _kept(self, key: tuple[str, str]) -> np.ndarray | None:
        """The kept lookup of ``key`` (table, column), if it is still of the batch's current tables."""
        kept = self._rows.get(key)
        if kept is None:
            return None
        frame_ref, target_ref, rows = kept
        frame, target = getattr(self, key[0]), getattr(self, REFERENCES[key])
        return rows if frame_ref() is frame and target_ref() is target and len(rows) == len(frame) else None

    def _keep_rows(self, found: dict) -> None:
        for (table, column), rows in found.items():
            rows.setflags(write=False)
            self._rows[(table, column)] = (weakref.ref(getattr(self, table)),
                                           weakref.ref(getattr(self, REFERENCES[(table, column)])), rows)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}={len(f):,}" for n, f in self.tables().items())
        return f"Batch({self.source!r}: {sizes})"


# --------------------------------------------------------------------------- typing after checks
def _finalise(table: Table, frame: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for column in table.columns:
        s = frame[column.name]
        if column.kind == "int":
            s = s.astype("int64")
        elif column.kind in ("money", "decimal"):
            s = s.astype("float64")
            if column.kind == "money":
                s = s.round(2)
        elif column.kind == "bool":
            s = s.astype(bool)
        elif column.kind == "enum":
            # Codes from Arrow's hash lookup: pd.Categorical(strings) is several times slower on Arrow strings.
            s = pd.Categorical.from_codes(positions_in(s, pa.array(column.values)), categories=list(column.values))
        elif column.name == "diagnosis":
            s = s.fillna("")
        out[column.name] = s
    typed = pd.DataFrame(out, index=frame.index, copy=False)
    extras = [c for c in frame.columns if c not in table.column_names]
    return pd.concat([typed, frame[extras]], axis=1) if extras else typed


def _check(source: str, read: Callable[[str], tuple[pd.DataFrame, Locator]]):
    """Read, parse and check every table; ``read(name)`` yields one raw table at a time.

    Each raw table is dropped as soon as it is parsed, so that at most one table
    is held twice in memory (raw and typed) at any moment.
    """
    frames, locators, violations, warnings, rows = {}, {}, [], [], {}
    for name, table in TABLES.items():
        raw, locators[name] = read(name)
        frames[name], found, warned = coerce_table(table, raw, locators[name])
        del raw
        violations += found
        warnings += warned
    if not any(not v.row_level for v in violations):
        violations += check_frames(frames, locators, rows)
    return frames, locators, violations, warnings, rows


def _reject(frames: dict[str, pd.DataFrame], violations: list[Violation], locators: dict[str, Locator]):
    """Drop every row that breaks a rule, and the rows that depend on it. Returns (frames, rejects).

    A rejected patient or provider takes its claims; a rejected item takes its claim;
    a rejected claim takes all its items. Each row keeps the first reason found.
    Vectorised throughout: a batch with millions of bad rows costs no Python per row.
    """
    bad = {name: np.zeros(len(frames[name]), dtype=bool) for name in TABLES}
    why = {name: np.empty(len(frames[name]), dtype=object) for name in TABLES}

    def add(name: str, rows: np.ndarray, reason) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        fresh = ~bad[name][rows]
        rows = rows[fresh]
        why[name][rows] = reason if isinstance(reason, str) else np.asarray(reason, dtype=object)[fresh]
        bad[name][rows] = True

    for v in violations:
        where = f"{v.table}.{v.column}" if v.column else v.table
        add(v.table, np.unique(v.rows), f"{where}: {v.rule}")

    def gone(name: str, column: str) -> pd.Series:
        return frames[name][column][bad[name]].dropna()

    claims, items = frames["claims"], frames["items"]
    for table, column, entity in (("patients", "patient_id", "patient"), ("providers", "provider_id", "provider")):
        rows = np.flatnonzero(isin(claims[column], gone(table, column)))
        add("claims", rows, (f"its {entity} " + claims[column].iloc[rows].astype(str) + " was rejected").to_numpy(dtype=object))
    rows = np.flatnonzero(isin(claims.claim_id, gone("items", "claim_id")))
    add("claims", rows, "one of its items was rejected")
    rows = np.flatnonzero(isin(items.claim_id, gone("claims", "claim_id")))
    add("items", rows, (f"its claim " + items.claim_id.iloc[rows].astype(str) + " was rejected").to_numpy(dtype=object))

    kept, parts = {}, []
    for name, table in TABLES.items():
        frame, rows = frames[name], np.flatnonzero(bad[name])
        kept[name] = frame[~bad[name]].reset_index(drop=True)
        if len(rows):
            ident = frame[table.key].iloc[rows]  # the table's key: for items, the claim_id (location tells lines apart)
            parts.append(pd.DataFrame({
                "table": name,
                "row": rows,
                "id": ident.astype(object).where(ident.notna(), None).to_numpy(dtype=object),
                "location": locators[name].where_many(rows),
                "reason": why[name][rows],
            }))
    rejects = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=REJECT_COLUMNS)
    return kept, rejects[REJECT_COLUMNS]


def _assemble(source: str, read: Callable[[str], tuple[pd.DataFrame, Locator]], on_bad_rows: OnBadRows) -> Batch:
    frames, locators, violations, warnings, rows = _check(source, read)
    rejects = pd.DataFrame(columns=REJECT_COLUMNS)
    if violations:
        table_level = [v for v in violations if not v.row_level]
        if on_bad_rows == "refuse" or table_level:
            raise BatchError(source, table_level + [v for v in violations if v.row_level])
        frames, rejects = _reject(frames, violations, locators)
        if len(frames["claims"]) == 0:
            raise BatchError(source, [Violation("claims", None, "has no valid rows left after rejecting bad rows")] + violations)
    typed = {name: _finalise(table, frames.pop(name)) for name, table in TABLES.items()}  # pop: free as we go
    batch = Batch(**typed, source=source, rejects=rejects, warnings=warnings)
    if not violations:  # rejected rows would have moved the rows the lookups found
        batch._keep_rows(rows)
    return batch


# --------------------------------------------------------------------------- public
def load_batch(path: str | Path, *, on_bad_rows: OnBadRows = "refuse") -> Batch:
    """Read and validate a batch folder written to the contract.

    Parameters
    ----------
    path : str or Path
        Folder holding ``patients``, ``providers``, ``claims`` and ``items``, each as
        ``NAME.parquet``, ``NAME.csv`` or a folder ``NAME/`` of Parquet parts.
    on_bad_rows : {"refuse", "reject"}
        ``"refuse"`` (default) raises :class:`BatchError` on the first broken rule.
        ``"reject"`` sets rows that break a row-level rule aside in ``Batch.rejects``,
        with the rows depending on them: a rejected patient or provider takes its
        claims, a rejected item takes its claim, a rejected claim takes all its items.
        Kept rows plus rejected rows equal the rows read, table by table, and the
        kept rows form a valid batch. Problems that are not about particular rows
        (a missing table or column, an unreadable file) are refused either way, and
        so is a batch with no valid claim left.

    Returns
    -------
    Batch
        Typed tables; labels are never read here (see :func:`load_labels`).

    Raises
    ------
    BatchError
        Naming table, column, rule and the first offending rows.

    Examples
    --------
    >>> batch = load_batch("data/demo", on_bad_rows="reject")  # doctest: +SKIP
    >>> batch.rejects.head(2)  # doctest: +SKIP
        table  row  id           location                                      reason
    0  claims    1  K2  claims.csv line 3  claims.care_type: must be one of outpatient/...
    1   items    3  K2   items.csv line 5                        its claim K2 was rejected
    """
    if on_bad_rows not in ("refuse", "reject"):
        raise ValueError(f"on_bad_rows must be 'refuse' or 'reject', not {on_bad_rows!r}")
    root = Path(path)
    if not root.is_dir():
        raise BatchError(str(root), [Violation("batch", None, "is not a folder" if root.exists() else "does not exist")])
    # Find every table before reading any, so that a missing one is reported at once.
    found: dict[str, list[Path]] = {}
    missing = []
    for name in TABLES:
        paths = find_table(root, name)
        if paths is None:
            missing.append(name)
        else:
            found[name] = paths
    if missing:
        raise BatchError(str(root), [Violation(m, None, _missing_rule(root, m)) for m in missing])
    try:
        return _assemble(str(root), lambda name: read_table(root, name, found[name]), on_bad_rows)
    finally:
        pa.default_memory_pool().release_unused()  # hand Arrow's freed read buffers back to the system


def _missing_rule(root: Path, name: str) -> str:
    rule = f"required table is missing (expected {name}.parquet, {name}.csv or {name}/)"
    near = near_misses(root, name)
    if near:
        rule += f"; found {', '.join(near[:3])}, which is not one of these (names are lower-case; .csv or .parquet only)"
    return rule


def validate_batch(batch: Batch) -> Batch:
    """Check an in-memory batch against the contract; returns it re-typed, or raises BatchError."""
    def read(name: str) -> tuple[pd.DataFrame, Locator]:
        frame = getattr(batch, name).reset_index(drop=True)
        frame = frame.astype({c: "str" for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})
        return frame, Locator.in_memory(name, len(frame))

    return _assemble(batch.source, read, "refuse")


def load_labels(path: str | Path, required_for: str | None = None) -> Labels | None:
    """Read ``labels/`` of a batch folder, or None when the batch carries no labels.

    With ``required_for`` (what needs them, e.g. "evaluation"), a batch without labels is
    refused with a :class:`~fraudkit.errors.FraudkitError` saying so instead.
    """
    root = Path(path) / "labels"
    if not root.is_dir():
        if required_for is not None:
            raise FraudkitError(f"{path} has no labels/ folder: {required_for} needs ground truth "
                                "(labels/claims and labels/providers, as `fraudkit generate` writes them)")
        return None
    frames = {}
    for name, table in LABEL_TABLES.items():
        paths = find_table(root, name)
        if paths is None:
            if name == "patients":
                frames[name] = None
                continue
            raise BatchError(str(root), [Violation(table.name, None, "required label table is missing")])
        raw, locator = read_table(root, name, paths)
        frame, violations, _ = coerce_table(table, raw, locator)
        if not violations:
            violations = check_values(table, frame, locator)  # one label per id
        if violations:
            raise BatchError(str(root), violations)
        frame = frame[list(table.column_names)].copy()
        frame["fraud_type"] = frame["fraud_type"].fillna("").astype(str)
        frames[name] = frame
    return Labels(**frames)


def batch_fingerprint(path: str | Path) -> str:
    """SHA-256 over the contract tables' files (names and bytes), labels excluded."""
    root = Path(path)
    digest = hashlib.sha256()
    for name in TABLES:
        for file in find_table(root, name) or []:
            digest.update(str(file.relative_to(root)).encode())
            with open(file, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    digest.update(chunk)
    return digest.hexdigest()

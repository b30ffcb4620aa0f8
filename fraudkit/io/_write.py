"""Writing batches and outputs atomically: everything goes to a temporary name first.

A run that dies half-way leaves the previous output (or none) in place, never a
half-written one; the next run clears the leftovers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ._schema import LABEL_TABLES, TABLES, Table

Format = Literal["parquet", "csv"]

_ARROW = {
    "id": pa.string(), "str": pa.string(), "enum": pa.string(), "int": pa.int64(),
    "money": pa.float64(), "decimal": pa.float64(), "date": pa.date32(), "bool": pa.bool_(),
}


def arrow_schema(table: Table) -> pa.Schema:
    """The Arrow schema fraudkit writes a contract table with."""
    return pa.schema([pa.field(c.name, _ARROW[c.kind], nullable=True) for c in table.columns])


def to_arrow(table: Table, frame: pd.DataFrame) -> pa.Table:
    """Convert a typed contract frame to Arrow with the contract's column types (extra columns dropped)."""
    columns = {}
    for c in table.columns:
        s = frame[c.name]
        if c.kind == "enum":
            s = s.astype("str").where(s.notna(), None) if isinstance(s.dtype, pd.CategoricalDtype) else s
        if c.kind == "date":
            columns[c.name] = pa.array(pd.to_datetime(s).dt.date if len(s) == 0 else s.astype("datetime64[s]").values.astype("datetime64[D]"), type=pa.date32())
            continue
        if c.kind == "money":
            s = s.round(2)
        columns[c.name] = pa.array(s, type=_ARROW[c.kind], from_pandas=True)
    return pa.table(columns, schema=arrow_schema(table))


def write_table(table: Table, frame: pd.DataFrame, path: Path, fmt: Format = "parquet") -> Path:
    """Write one contract table to ``path`` (suffix added from ``fmt``)."""
    arrow = to_arrow(table, frame)
    target = path.with_suffix(f".{fmt}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        pq.write_table(arrow, target, compression="zstd")
    elif fmt == "csv":
        pacsv.write_csv(arrow, target, write_options=pacsv.WriteOptions(quoting_style="needed"))
    else:
        raise ValueError(f"unknown format {fmt!r}: use 'parquet' or 'csv'")
    return target


def _clear_leftovers(target: Path) -> None:
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        pid = stale.name.rsplit("-", 2)[-2] if stale.name.count("-") >= 2 else ""
        if pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
            continue
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_dir(target: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``target`` only if the block succeeds.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "scores"
    >>> with atomic_dir(out) as tmp:
    ...     _ = (tmp / "summary.json").write_text("{}")
    >>> sorted(p.name for p in out.iterdir())
    ['summary.json']
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; choose another --out or allow overwriting")
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.tmp-{os.getpid()}-old{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path that is renamed to ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_batch(batch, out: str | Path, *, fmt: Format = "parquet", labels=None, overwrite: bool = True) -> Path:
    """Write a :class:`Batch` (and optional :class:`Labels`) as a batch folder, atomically."""
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for name, table in TABLES.items():
            write_table(table, getattr(batch, name), tmp / name, fmt)
        if labels is not None:
            for name, table in LABEL_TABLES.items():
                frame = getattr(labels, name)
                if frame is not None:
                    write_table(table, frame, tmp / "labels" / name, fmt)
    return out

"""Find and read the raw tables of a batch folder (Parquet, CSV, or a folder of Parquet parts).

Reading is kept apart from checking: this module turns files into DataFrames
(CSV columns all as strings, Parquet columns as stored) and remembers where
each row came from, so that a message can say "claims.csv line 125".
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ._errors import BatchError, Violation

_SNIFF_BYTES = 1 << 20  # a CSV's first MiB is checked for binary content before parsing


@dataclass(frozen=True)
class _Segment:
    path: Path
    start: int  # first table row held by this file
    rows: int
    csv: bool


@dataclass(frozen=True)
class Locator:
    """Maps a row position of a table to the file and line (CSV) or row (Parquet) it came from."""

    segments: tuple[_Segment, ...]
    root: Path

    def where(self, position: int) -> str:
        starts = [s.start for s in self.segments]
        seg = self.segments[max(0, int(np.searchsorted(starts, position, side="right")) - 1)]
        name = seg.path.relative_to(self.root) if seg.path.is_relative_to(self.root) else seg.path
        offset = position - seg.start
        return f"{name} line {offset + 2}" if seg.csv else f"{name} row {offset + 1}"

    @classmethod
    def in_memory(cls, name: str, rows: int) -> "Locator":
        return cls((_Segment(Path(name), 0, rows, False),), Path("."))


def find_table(root: Path, name: str) -> list[Path] | None:
    """The file(s) holding table ``name`` in batch folder ``root``; None when absent.

    Raises BatchError when the table is stored twice (e.g. both ``claims.csv`` and
    ``claims.parquet``), since it would be unclear which one is meant.
    """
    found = [p for p in (root / f"{name}.parquet", root / f"{name}.csv", root / name) if p.exists()]
    if len(found) > 1:
        listed = " and ".join(p.name for p in found)
        raise BatchError(str(root), [Violation(name, None, f"is stored twice ({listed}); keep one")])
    if not found:
        return None
    path = found[0]
    if path.is_dir():
        parts = sorted(path.glob("*.parquet"))
        if not parts:
            parts = sorted(path.glob("*.csv"))
        if not parts:
            raise BatchError(str(root), [Violation(name, None, f"folder {path.name}/ holds no .parquet or .csv parts")])
        return parts
    return [path]


def read_table(root: Path, name: str, paths: list[Path]) -> tuple[pd.DataFrame, Locator]:
    """Read one table from its file(s), concatenating parts in file-name order."""
    frames, segments, start = [], [], 0
    for path in paths:
        is_csv = path.suffix == ".csv"
        table = _read_csv(root, name, path) if is_csv else _read_parquet(root, name, path)
        frame = table.to_pandas(date_as_object=False, types_mapper=_types_mapper)
        frames.append(frame)
        segments.append(_Segment(path, start, len(frame), is_csv))
        start += len(frame)
    if len(frames) > 1:
        columns = [tuple(f.columns) for f in frames]
        if len(set(columns)) > 1:
            raise BatchError(str(root), [Violation(name, None, "parts of the table do not share the same columns")])
        frame = pd.concat(frames, ignore_index=True)
    else:
        frame = frames[0]
    return frame, Locator(tuple(segments), root)


def _types_mapper(arrow_type: pa.DataType):
    # Strings come back as pandas' pyarrow-backed ``str`` dtype; everything else as numpy.
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype("pyarrow", na_value=np.nan)
    return None


def _refuse(root: Path, name: str, rule: str) -> BatchError:
    return BatchError(str(root), [Violation(name, None, rule)])


def _read_parquet(root: Path, name: str, path: Path) -> pa.Table:
    try:
        # Opening reads only the footer, so a truncated or foreign file fails before any data is loaded.
        parquet = pq.ParquetFile(path)
        return parquet.read()
    except (pa.ArrowException, OSError) as exc:
        raise _refuse(root, name, f"{path.name} is not a readable Parquet file ({_short(exc)})") from None


def _read_csv(root: Path, name: str, path: Path) -> pa.Table:
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if b"\x00" in head:
        raise _refuse(root, name, f"{path.name} is binary (NUL bytes in its first MiB), not a UTF-8 CSV file")
    if not head.strip():
        raise _refuse(root, name, f"{path.name} is empty: it has no header row")
    header_line = head.split(b"\n", 1)[0]
    if len(header_line) == len(head) and len(head) == _SNIFF_BYTES:
        raise _refuse(root, name, f"{path.name} has no line break in its first MiB, so it has no readable header row")
    try:
        header = next(csv.reader(io.StringIO(header_line.decode("utf-8-sig").rstrip("\r"))))
    except UnicodeDecodeError:
        raise _refuse(root, name, f"{path.name} is not UTF-8 (line 1)") from None
    header = [h for h in header]
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise _refuse(root, name, f"{path.name} has the column {duplicated[0]!r} more than once")
    try:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding="utf8", block_size=16 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        text = str(exc)
        if "UTF8" in text or "utf8" in text.lower():
            line = _first_bad_utf8_line(path)
            raise _refuse(root, name, f"{path.name} is not UTF-8 (first bad byte on line {line})") from None
        raise _refuse(root, name, f"{path.name} cannot be parsed as CSV ({_short(exc)})") from None


def _first_bad_utf8_line(path: Path) -> int:
    line = 1
    with open(path, "rb") as fh:
        carry = b""
        while chunk := fh.read(1 << 20):
            data = carry + chunk
            try:
                data.decode("utf-8")
                carry = b""
            except UnicodeDecodeError as exc:
                if exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
                    carry = data[exc.start:]
                    data = data[: exc.start]
                else:
                    return line + data[: exc.start].count(b"\n")
            line += data.count(b"\n")
    return line


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."

"""Find and read the raw tables of a batch folder (Parquet, CSV, or a folder of Parquet parts).

Reading is kept apart from checking: this module turns files into DataFrames
(CSV columns all as strings, Parquet columns as stored) and remembers where
each row came from, so that a message can say "claims.csv line 125".
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ._errors import BatchError, Violation

_STR = pd.StringDtype("pyarrow", na_value=np.nan)

_SNIFF_BYTES = 1 << 20  # a CSV's first MiB is checked for binary content before parsing
_SCAN_CHUNK = 1 << 26  # bytes per step when scanning a CSV file for empty lines


@dataclass(frozen=True)
class _Segment:
    path: Path
    start: int  # first table row held by this file
    rows: int
    csv: bool
    #: CSV line of each row, only when some quoted cell holds a line break (else row i is on line i + 2).
    lines: np.ndarray | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class Locator:
    """Maps a row position of a table to the file and line (CSV) or row (Parquet) it came from.

    CSV line numbers count the header as line 1, and follow records over quoted line
    breaks and over the empty lines the reader skips (found by scanning the file again,
    only when a location is asked for; not both in the same file).
    """

    segments: tuple[_Segment, ...]
    root: Path

    def _names(self) -> list[str]:
        out = []
        for seg in self.segments:
            try:
                out.append(str(seg.path.relative_to(self.root)))
            except ValueError:
                out.append(str(seg.path))
        return out

    def where(self, position: int) -> str:
        """``"claims.csv line 125"`` or ``"claims/part-1.parquet row 3"`` for one row position."""
        return str(self.where_many(np.asarray([position], dtype=np.int64))[0])

    def where_many(self, positions) -> np.ndarray:
        """:meth:`where` for an array of positions at once (vectorised; for rejects files)."""
        positions = np.asarray(positions, dtype=np.int64)
        if len(positions) == 0:
            return np.empty(0, dtype=object)
        starts = np.fromiter((s.start for s in self.segments), dtype=np.int64, count=len(self.segments))
        seg = np.maximum(np.searchsorted(starts, positions, side="right") - 1, 0)
        offset = positions - starts[seg]
        is_csv = np.fromiter((s.csv for s in self.segments), dtype=bool, count=len(self.segments))[seg]
        number = np.where(is_csv, offset + 2, offset + 1)
        for i, segment in enumerate(self.segments):
            if not segment.csv:
                continue
            mine = seg == i
            if segment.lines is not None:
                number[mine] = segment.lines[offset[mine]]
            else:
                # The reader skips empty lines; each one before a record moves it down a line.
                slots = _blank_line_slots(segment.path)
                number[mine] += np.searchsorted(slots, number[mine], side="right")
        prefix = np.array([f"{n} line " if s.csv else f"{n} row " for n, s in zip(self._names(), self.segments)], dtype=object)
        return prefix[seg] + number.astype(str).astype(object)

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
        listed = " and ".join(p.name + ("/" if p.is_dir() else "") for p in found)
        raise BatchError(str(root), [Violation(name, None, f"the table is stored twice ({listed}); keep one")])
    if not found:
        return None
    path = found[0]
    if path.is_dir():
        # Names starting with "." or "_" are bookkeeping of other tools (Spark's _SUCCESS, macOS ._ files).
        visible = [p for p in path.iterdir() if not p.name.startswith((".", "_"))]
        parts = sorted(p for p in visible if p.suffix == ".parquet" and p.is_file())
        csv_parts = sorted(p for p in visible if p.suffix == ".csv" and p.is_file())
        if parts and csv_parts:
            raise BatchError(str(root), [Violation(name, None, f"folder {path.name}/ mixes .parquet and .csv parts; keep one format")])
        parts = parts or csv_parts
        if not parts:
            nested = " (subfolders such as Hive partitions are not read)" if any(p.is_dir() for p in visible) else ""
            raise BatchError(str(root), [Violation(name, None, f"folder {path.name}/ holds no .parquet or .csv parts{nested}")])
        return parts
    if not path.is_file():
        raise BatchError(str(root), [Violation(name, None, f"{path.name} is not a regular file")])
    return [path]


def count_rows(root: Path, name: str) -> int | None:
    """Rows of table ``name`` in batch folder ``root``, from its Parquet footers alone (no data is
    read); None for a CSV table, a missing one or an unreadable footer."""
    try:
        paths = find_table(Path(root), name)
        if not paths or any(p.suffix != ".parquet" for p in paths):
            return None
        return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
    except (BatchError, OSError, pa.ArrowException):
        return None


def near_misses(root: Path, name: str) -> list[str]:
    """Files in ``root`` that look like table ``name`` under another spelling (``Claims.CSV``, ``claims.xlsx``)."""
    try:
        entries = [p.name for p in root.iterdir()]
    except OSError:
        return []
    return sorted(e for e in entries if e.lower() == name or e.lower().startswith(name + "."))


def read_table(root: Path, name: str, paths: list[Path]) -> tuple[pd.DataFrame, Locator]:
    """Read one table from its file(s), concatenating parts in file-name order.

    Whatever program wrote a Parquet file, its columns come back in a few plain
    pandas types (see :func:`_normalise`), so the checks need not know the writer.
    """
    tables, segments, start = [], [], 0
    for path in paths:
        is_csv = path.suffix == ".csv"
        table = _read_csv(root, name, path) if is_csv else _read_parquet(root, name, path)
        names = table.column_names
        if len(set(names)) < len(names):  # Parquet allows it; a frame cannot hold it
            twice = sorted({c for c in names if names.count(c) > 1})
            raise _refuse(root, name, f"{path.name} has the column {twice[0]!r} more than once")
        try:
            tables.append(_normalise(table))
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
            raise _refuse(root, name, f"{path.name} holds values that cannot be read ({_short(exc)})") from None
        segments.append(_Segment(path, start, table.num_rows, is_csv, _csv_lines(table) if is_csv else None))
        start += table.num_rows
    if len(tables) > 1:
        # Parts written alike (one program, one schema) are joined in Arrow without copying and
        # converted once: no second copy of the table, as concatenating DataFrames would make.
        # (Parts carrying pandas metadata, which can rebuild an index per part, go part by part.)
        first = tables[0].schema
        if all(t.schema.equals(first) and not (t.schema.metadata or {}).get(b"pandas") for t in tables):
            try:
                frame = pa.concat_tables(tables).to_pandas(date_as_object=False, types_mapper=_types_mapper)
                return frame, Locator(tuple(segments), root)
            except (pa.ArrowException, ValueError, TypeError, OverflowError):
                pass  # converted part by part below, so that the message names the part
    frames = []
    for path, table in zip(paths, tables):
        try:
            frames.append(table.to_pandas(date_as_object=False, types_mapper=_types_mapper))
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
            raise _refuse(root, name, f"{path.name} holds values that cannot be read ({_short(exc)})") from None
    del tables
    if len(frames) > 1:
        first = list(frames[0].columns)
        for path, f in zip(paths[1:], frames[1:]):
            if sorted(map(str, f.columns)) != sorted(map(str, first)):
                only = sorted(set(map(str, f.columns)) ^ set(map(str, first)))
                raise _refuse(root, name, f"parts of the table do not share the same columns ({paths[0].name} and "
                                          f"{path.name} differ in {', '.join(map(repr, only[:5]))})")
        frame = pd.concat([f[first] for f in frames], ignore_index=True)
    else:
        frame = frames[0]
    return frame, Locator(tuple(segments), root)


def _blank_line_slots(path: Path) -> np.ndarray:
    """For each empty line of a CSV file, the line a record would have there had the empty lines not been.

    Vectorised over 64 MiB chunks (numpy finds the line breaks); only called when a
    message or a rejects file needs line numbers. Cached per file (path, size, mtime).
    """
    try:
        st = path.stat()
    except OSError:
        return np.empty(0, dtype=np.int64)
    return _blank_line_slots_cached(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _blank_line_slots_cached(path: str, size: int, mtime: int) -> np.ndarray:
    blanks: list[np.ndarray] = []
    seen = 0  # line breaks before this chunk
    last, tail = -1, b""  # file position of the previous line break (-1: before the file); bytes before this chunk
    offset = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_SCAN_CHUNK):
            buf = np.frombuffer(chunk, dtype=np.uint8)
            breaks = np.flatnonzero(buf == 10) + offset
            if len(breaks):
                prev = np.concatenate([[last], breaks[:-1]])
                gap = breaks - prev
                empty = gap == 1
                two = np.flatnonzero(gap == 2)
                if len(two):  # "\r\n\r\n": an empty line of a CRLF file
                    between = prev[two] + 1
                    data = np.frombuffer(tail + chunk, dtype=np.uint8)
                    empty[two] = data[between - offset + len(tail)] == 13
                # the k-th line break (0-based) ends line k + 1, so an empty line after it is line k + 2
                blanks.append(seen + np.flatnonzero(empty) + 1)
                seen += len(breaks)
                last = int(breaks[-1])
            tail = chunk[-2:]
            offset += len(chunk)
    if not blanks:
        return np.empty(0, dtype=np.int64)
    lines = np.concatenate(blanks).astype(np.int64)
    return lines - np.arange(len(lines), dtype=np.int64)


def _csv_lines(table: pa.Table) -> np.ndarray | None:
    """The CSV line of each row when quoted cells hold line breaks (valid CSV); None when every row is one line."""
    breaks = None
    for col in table.columns:
        if not pa.types.is_string(col.type) or not (pc.any(pc.match_substring(col, "\n")).as_py()
                                                    or pc.any(pc.match_substring(col, "\r")).as_py()):
            continue
        count = (pc.count_substring(col, "\n").to_numpy(zero_copy_only=False)
                 + pc.count_substring(col, "\r").to_numpy(zero_copy_only=False)
                 - pc.count_substring(col, "\r\n").to_numpy(zero_copy_only=False))
        count = np.nan_to_num(count.astype("float64")).astype(np.int64)
        breaks = count if breaks is None else breaks + count
    if breaks is None:
        return None
    return 2 + np.arange(table.num_rows, dtype=np.int64) + np.concatenate([[0], np.cumsum(breaks)[:-1]])


def _normalise(table: pa.Table) -> pa.Table:
    """Cast the many ways other programs store a column to the few the checks understand.

    Dictionary (categorical) columns are decoded, decimals become float64, a
    column of nulls only becomes string, binary becomes UTF-8 string, string
    views and large strings become string. Everything happens in Arrow, column by column.
    """
    columns, changed = [], False
    for col in table.columns:
        t = col.type
        target = None
        if pa.types.is_dictionary(t):
            col = col.cast(t.value_type) if col.num_chunks else pa.chunked_array([], t.value_type)
            t, changed = col.type, True
        if pa.types.is_decimal(t):
            target = pa.float64()
        elif pa.types.is_null(t) or pa.types.is_large_string(t) or _is_string_view(t):
            target = pa.string()
        elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
            target = pa.string()
        elif pa.types.is_float16(t) or pa.types.is_float32(t):
            # Via the shortest decimal spelling, so a float32 25.6 becomes 25.6, not 25.6000003814697.
            col = col.cast(pa.float32()).cast(pa.string())
            target = pa.float64()
        elif pa.types.is_date64(t):
            target = pa.timestamp("ms")
        if target is not None:
            col = col.cast(target)
            changed = True
        columns.append(col)
    return pa.Table.from_arrays(columns, names=table.column_names) if changed else table


def _is_string_view(t: pa.DataType) -> bool:
    check = getattr(pa.types, "is_string_view", None)
    return bool(check and check(t))


def _types_mapper(arrow_type: pa.DataType):
    # Strings come back as pandas' pyarrow-backed ``str`` dtype; integers and booleans as
    # pandas' nullable types, so that a null does not turn an 18-digit integer id into a
    # float (losing digits) or a boolean column into objects. Everything else as numpy.
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return _STR
    if pa.types.is_integer(arrow_type):
        return pd.api.types.pandas_dtype(str(arrow_type).replace("int", "Int").replace("uInt", "UInt"))
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def _refuse(root: Path, name: str, rule: str) -> BatchError:
    return BatchError(str(root), [Violation(name, None, rule)])


def _read_parquet(root: Path, name: str, path: Path) -> pa.Table:
    try:
        # Opening reads only the footer, so a truncated or foreign file fails before any data is loaded.
        parquet = pq.ParquetFile(path)
        return parquet.read()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _refuse(root, name, f"{path.name} is not a readable Parquet file ({_short(exc)})") from None


def _read_csv(root: Path, name: str, path: Path) -> pa.Table:
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if head.startswith(b"PK\x03\x04"):
        raise _refuse(root, name, f"{path.name} is a zip archive (an Excel workbook?), not a CSV file")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _refuse(root, name, f"{path.name} is UTF-16 (Excel's 'Unicode text'), not UTF-8; save it as CSV UTF-8")
    if b"\x00" in head:
        raise _refuse(root, name, f"{path.name} is binary (NUL bytes in its first MiB), not a UTF-8 CSV file")
    if not head.strip():
        raise _refuse(root, name, f"{path.name} is empty: it has no header row")
    header_line = head.split(b"\n", 1)[0]
    if len(header_line) == len(head) and len(head) == _SNIFF_BYTES:
        raise _refuse(root, name, f"{path.name} has no line break in its first MiB, so it has no readable header row")
    try:
        header = next(csv.reader(io.StringIO(header_line.decode("utf-8-sig").rstrip("\r"))), [])
    except UnicodeDecodeError:
        raise _refuse(root, name, f"{path.name} is not UTF-8 (line 1){_ENCODING_HINT}") from None
    except csv.Error as exc:
        raise _refuse(root, name, f"{path.name} has an unreadable header row ({_short(exc)})") from None
    if not any(h.strip() for h in header):
        raise _refuse(root, name, f"{path.name} has an empty header row (line 1)")
    if len(header) == 1:
        for sep, label in (("\t", "tabs"), (";", "semicolons"), ("|", "bars")):
            if sep in header[0]:
                raise _refuse(root, name, f"{path.name} is separated by {label}, not commas (line 1)")
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise _refuse(root, name, f"{path.name} has the column {duplicated[0]!r} more than once (line 1)")
    try:
        return pacsv.read_csv(path, **_csv_options(header))
    except (pa.ArrowException, OSError, ValueError) as exc:
        line = _first_bad_utf8_line(path)
        if line is not None:
            raise _refuse(root, name, f"{path.name} is not UTF-8 (first bad byte on line {line}){_ENCODING_HINT}") from None
        bad = _ragged_lines(path, header)
        if bad:
            (line, got), more = bad[0], len(bad) - 1
            also = f", and {'at least ' if len(bad) >= 5 else ''}{more} more line{'s' if more > 1 else ''} too" if more else ""
            raise _refuse(root, name, f"{path.name} line {line} has {got} field{'s' if got != 1 else ''} where the header "
                                      f"names {len(header)} (a comma or a quote out of place){also}") from None
        raise _refuse(root, name, f"{path.name} cannot be parsed as CSV ({_short(exc)})") from None


_ENCODING_HINT = "; save it as UTF-8 (a GBK/GB18030 export from Excel is the usual cause)"


def _csv_options(header: list[str], invalid_row_handler=None) -> dict:
    return dict(
        read_options=pacsv.ReadOptions(encoding="utf8", block_size=16 << 20, use_threads=invalid_row_handler is None),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=invalid_row_handler),
        convert_options=pacsv.ConvertOptions(
            column_types={h: pa.string() for h in header},
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=True,  # "" is as empty as nothing
        ),
    )


def _ragged_lines(path: Path, header: list[str], limit: int = 5) -> list[tuple[int, int]]:
    """(line, fields) of the first rows whose field count differs from the header's (error path only)."""
    found: list[tuple[int, int]] = []

    def note(row) -> str:
        found.append((row.number if row.number is not None else -1, row.actual_columns))
        return "skip" if len(found) < limit else "error"  # stop reading: no Python call for every bad row

    try:
        pacsv.read_csv(path, **_csv_options(header, note))
    except (pa.ArrowException, OSError, ValueError):
        pass
    return found


def _first_bad_utf8_line(path: Path) -> int | None:
    """Line number of the first byte that is not UTF-8, or None when the whole file decodes (error path only)."""
    line = 1
    with open(path, "rb") as fh:
        carry = b""
        while chunk := fh.read(1 << 20):
            data = carry + chunk
            carry = b""
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                if exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
                    carry = data[exc.start:]  # a character split across chunks
                    data = data[: exc.start]
                else:
                    return line + data[: exc.start].count(b"\n")
            line += data.count(b"\n")
    return line if carry else None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."

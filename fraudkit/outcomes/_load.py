"""Reading and validating an outcomes file: what past flight inspections found.

An outcomes file is a CSV or Parquet table, one row per finding:

==============  =========  ===================================================================
column          required   meaning
==============  =========  ===================================================================
provider_id     yes        the inspected provider (must be in the batch)
inspected_on    yes        date of the inspection, ``YYYY-MM-DD``
outcome         yes        ``confirmed`` (fraud found) or ``cleared`` (nothing found)
patient_id      no         a patient the inspection confirmed or cleared (must be in the batch)
claim_id        no         a claim the inspection confirmed or cleared (in the batch, billed by provider_id)
==============  =========  ===================================================================

A row without ``patient_id`` and ``claim_id`` is the verdict on the provider. A provider
named only in patient or claim rows is confirmed when any of them is confirmed. When a
provider was inspected more than once, its latest inspection counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fraudkit.errors import FraudkitError

#: Columns an outcomes file must have, and the optional ones.
REQUIRED_COLUMNS = ("provider_id", "inspected_on", "outcome")
OPTIONAL_COLUMNS = ("patient_id", "claim_id")
#: The values ``outcome`` may take.
OUTCOME_VALUES = ("confirmed", "cleared")
#: Rows named in an error message (the count of the rest follows).
SHOWN_ROWS = 3


class OutcomesError(FraudkitError):
    """An outcomes file that cannot be used; the message names the file, column, rule and first rows.

    The CLI turns it into a one-paragraph message and exit code 2.
    """


@dataclass
class Outcomes:
    """Validated inspection outcomes of one batch.

    Attributes
    ----------
    rows : DataFrame
        The file's rows: ``provider_id, inspected_on (datetime64), outcome, patient_id, claim_id``
        ("" where a row names no patient or claim).
    providers : DataFrame
        One verdict per inspected provider, indexed by ``provider_id``: ``outcome``
        (``confirmed`` / ``cleared``) and ``inspected_on`` (the latest inspection).
    source : str
        Where the outcomes were read from.

    Examples
    --------
    >>> rows = pd.DataFrame({"provider_id": ["H1", "H2", "H1"], "inspected_on": ["2024-03-01"] * 3,
    ...                      "outcome": ["confirmed", "cleared", "confirmed"], "patient_id": ["", "", "P7"]})
    >>> o = Outcomes.from_frame(rows)
    >>> o.seeds()
    {'providers': ['H1'], 'patients': ['P7']}
    >>> o.providers["outcome"].to_dict()
    {'H1': 'confirmed', 'H2': 'cleared'}
    """

    rows: pd.DataFrame
    providers: pd.DataFrame
    source: str = "<memory>"

    @classmethod
    def from_frame(cls, rows: pd.DataFrame, source: str = "<memory>") -> "Outcomes":
        """Outcomes from already-checked rows (as :func:`load_outcomes` leaves them, or built in code)."""
        rows = rows.copy()
        for column in OPTIONAL_COLUMNS:
            if column not in rows.columns:
                rows[column] = ""
        rows = rows[list(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)].reset_index(drop=True)
        for column in ("provider_id", "outcome", *OPTIONAL_COLUMNS):
            rows[column] = rows[column].fillna("").astype(str)
        rows["inspected_on"] = pd.to_datetime(rows["inspected_on"])
        return cls(rows, _provider_verdicts(rows), source)

    @property
    def confirmed(self) -> list[str]:
        """Providers whose latest inspection found fraud, in id order."""
        return sorted(self.providers.index[self.providers["outcome"] == "confirmed"])

    @property
    def cleared(self) -> list[str]:
        """Providers whose latest inspection found nothing, in id order."""
        return sorted(self.providers.index[self.providers["outcome"] == "cleared"])

    def labels(self) -> pd.Series:
        """1 for confirmed, 0 for cleared, indexed by provider_id (the re-ranker's training target)."""
        return self.providers["outcome"].eq("confirmed").astype(int)

    def seeds(self) -> dict[str, list[str]]:
        """Confirmed providers and patients: the seeds of graph propagation (``FraudModel.score(seeds=)``)."""
        latest = self.rows.merge(self.providers[["inspected_on"]].rename(columns={"inspected_on": "_latest"}),
                                 left_on="provider_id", right_index=True)
        latest = latest[latest["inspected_on"] == latest["_latest"]]
        patients = latest.loc[(latest["outcome"] == "confirmed") & (latest["patient_id"] != ""), "patient_id"]
        return {"providers": self.confirmed, "patients": sorted(set(patients))}

    def __len__(self) -> int:
        return len(self.providers)

    def __repr__(self) -> str:
        return f"Outcomes({self.source!r}: {len(self.confirmed)} confirmed, {len(self.cleared)} cleared providers)"


def _provider_verdicts(rows: pd.DataFrame) -> pd.DataFrame:
    latest = rows.groupby("provider_id", sort=True)["inspected_on"].transform("max")
    last = rows[rows["inspected_on"] == latest]
    own = last[(last["patient_id"] == "") & (last["claim_id"] == "")]
    verdict = own.groupby("provider_id")["outcome"].agg(lambda s: "confirmed" if (s == "confirmed").any() else "cleared")
    derived = last.groupby("provider_id")["outcome"].agg(lambda s: "confirmed" if (s == "confirmed").any() else "cleared")
    outcome = verdict.reindex(derived.index).fillna(derived)
    when = last.groupby("provider_id")["inspected_on"].max()
    out = pd.DataFrame({"outcome": outcome.astype(str), "inspected_on": when.reindex(outcome.index)})
    out.index.name = "provider_id"
    return out.sort_index()


# ---------------------------------------------------------------------- loading
def _refuse(path: Path, column: str | None, rule: str, where: list[str] | None = None, count: int = 0) -> OutcomesError:
    head = f"Outcomes file {path} is refused: "
    head += f"column {column!r} " if column else ""
    text = head + rule
    if where:
        more = f" and {count - len(where):,} more" if count > len(where) else ""
        text += f", in {count:,} row{'s' if count != 1 else ''}: {', '.join(where)}{more}"
    return OutcomesError(text + ". Nothing was scored or trained.")


def _read(path: Path) -> tuple[pd.DataFrame, np.ndarray, str]:
    """The file as strings, the line (CSV) or row (Parquet) number of each row, and that word."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False, encoding="utf-8")
        except UnicodeDecodeError:
            raise _refuse(path, None, "is not UTF-8 text") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise _refuse(path, None, f"is not a readable CSV table ({' '.join(str(exc).split())[:200]})") from None
        number = np.arange(len(frame)) + 2  # the header is line 1
        blank = frame.apply(lambda c: c.str.strip().eq("")).all(axis=1).to_numpy() if len(frame.columns) else np.zeros(0, bool)
        return frame[~blank].reset_index(drop=True), number[~blank], "line"
    if suffix in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several kinds for a damaged file
            raise _refuse(path, None, f"is not a readable Parquet file ({' '.join(str(exc).split())[:200]})") from None
        for column in frame.columns:
            s = frame[column]
            if pd.api.types.is_datetime64_any_dtype(s):
                frame[column] = s.dt.strftime("%Y-%m-%d").fillna("")
            else:
                frame[column] = s.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        return frame.reset_index(drop=True), np.arange(len(frame)) + 1, "row"
    raise _refuse(path, None, f"has the extension {path.suffix or '(none)'!r}; give a .csv or .parquet file")


def load_outcomes(path: str | Path, batch) -> Outcomes:
    """Read and check an outcomes file against the batch it is used with.

    Refused, with one paragraph naming the file, column, rule and first offending rows
    (:class:`OutcomesError`): a missing or unknown column, an empty file, an outcome other than
    ``confirmed`` / ``cleared``, a date that is not ``YYYY-MM-DD``, a provider, patient or
    claim that is not in the batch, a claim billed by another provider than its row names,
    and a provider both confirmed and cleared on the same day.

    Parameters
    ----------
    path : path
        CSV (header line first, UTF-8) or Parquet file.
    batch : fraudkit.io.Batch
        The batch being scored; every id in the file must be in it.

    Returns
    -------
    Outcomes
    """
    path = Path(path)
    if not path.is_file():
        raise _refuse(path, None, "does not exist" if not path.exists() else "is not a file")
    frame, number, unit = _read(path)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise _refuse(path, missing[0], f"is missing (an outcomes file needs {', '.join(REQUIRED_COLUMNS)}; "
                      f"optional: {', '.join(OPTIONAL_COLUMNS)}; found {', '.join(columns) or 'no columns'})")
    unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise _refuse(path, unknown[0], f"is not an outcomes column (known: {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})")
    if len(set(columns)) != len(columns):
        twice = next(c for c in columns if columns.count(c) > 1)
        raise _refuse(path, twice, "appears twice")
    if len(frame) == 0:
        raise _refuse(path, None, "holds no rows (an outcome per inspected provider is expected)")
    for column in OPTIONAL_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    for column in frame.columns:
        frame[column] = frame[column].astype(str).str.strip()

    def check(column: str, bad: np.ndarray, rule: str, show=None) -> None:
        if bad.any():
            idx = np.flatnonzero(bad)
            values = frame[column].to_numpy() if show is None else show
            where = [f"{unit} {number[i]} ({values[i]!r})" for i in idx[:SHOWN_ROWS]]
            raise _refuse(path, column, rule, where, len(idx))

    check("provider_id", frame["provider_id"].eq("").to_numpy(), "must name the inspected provider (it is empty)")
    outcome = frame["outcome"].str.lower()
    check("outcome", ~outcome.isin(OUTCOME_VALUES).to_numpy(), f"must be {' or '.join(OUTCOME_VALUES)}")
    frame["outcome"] = outcome
    text = frame["inspected_on"]
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    check("inspected_on", (dates.isna() | ~text.str.fullmatch(r"\d{4}-\d{2}-\d{2}")).to_numpy(),
          "must be a date written YYYY-MM-DD")
    frame["inspected_on"] = dates

    source = getattr(batch, "source", "the batch")
    for column, table, key in (("provider_id", batch.providers, "provider_id"),
                               ("patient_id", batch.patients, "patient_id"),
                               ("claim_id", batch.claims, "claim_id")):
        given = frame[column]
        known = pd.Index(table[key].astype(str).unique())
        check(column, ((given != "") & ~given.isin(known)).to_numpy(),
              f"names {column.split('_')[0]}s that are not in the batch {source} "
              f"(outcomes must be about the batch being scored)")
    if frame["claim_id"].ne("").any():
        billed = batch.claims.drop_duplicates("claim_id").set_index(batch.claims.drop_duplicates("claim_id")["claim_id"].astype(str))["provider_id"].astype(str)
        by = frame["claim_id"].map(billed).fillna("")
        bad = (frame["claim_id"] != "") & (by != frame["provider_id"])
        show = [f"{c} billed by {b}, row says {p}" for c, b, p in zip(frame["claim_id"], by, frame["provider_id"])]
        check("claim_id", bad.to_numpy(), "names claims that the row's provider did not bill", np.array(show, dtype=object))
    own = frame[(frame["patient_id"] == "") & (frame["claim_id"] == "")]
    verdicts = own.groupby(["provider_id", "inspected_on"])["outcome"].transform("nunique")
    clash = np.zeros(len(frame), dtype=bool)
    clash[verdicts.index[verdicts.to_numpy() > 1]] = True
    check("outcome", clash, "is both confirmed and cleared for one provider on one day", frame["provider_id"].to_numpy())
    return Outcomes.from_frame(frame, source=str(path))


def merge_outcomes(kept: Outcomes | None, given: Outcomes | None, batch) -> Outcomes | None:
    """Outcomes kept by a model (``fit(outcomes=)``) and those given when scoring, as one.

    ``given`` may be a path (read with :func:`load_outcomes`). Kept rows are restricted to what ``batch`` still holds (a provider, patient or claim of an
    earlier batch may be gone); for a provider named in both, the given rows win. None when
    nothing is left.
    """
    if given is not None and not isinstance(given, Outcomes):
        given = load_outcomes(given, batch)  # a path
    if kept is None:
        return given
    rows = kept.rows
    rows = rows[rows["provider_id"].isin(batch.providers["provider_id"].astype(str))
                & ((rows["patient_id"] == "") | rows["patient_id"].isin(batch.patients["patient_id"].astype(str)))
                & ((rows["claim_id"] == "") | rows["claim_id"].isin(batch.claims["claim_id"].astype(str)))]
    if given is not None:
        rows = pd.concat([rows[~rows["provider_id"].isin(given.rows["provider_id"])], given.rows], ignore_index=True)
    if len(rows) == 0:
        return None
    return Outcomes.from_frame(rows, source=kept.source if given is None else f"{kept.source} + {given.source}")

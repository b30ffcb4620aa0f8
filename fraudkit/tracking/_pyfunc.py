"""The fraudkit model as an MLflow ``python_function`` model, and its JSON-friendly input.

Input: one table holding a whole batch
--------------------------------------
A pyfunc (and ``mlflow models serve``) takes one DataFrame, while a batch is four
tables. The request is therefore the four tables stacked: a column ``table``
names the table of each row (``patients``, ``providers``, ``claims`` or
``items``) and the other columns are the contract's columns (``shared/CONTRACT.md``),
left empty where a table does not have them. Dates are ``YYYY-MM-DD`` strings.
:func:`batch_to_frame` builds it from a :class:`~fraudkit.io.Batch` and
:func:`serving_request` wraps it for the REST endpoint::

    {"dataframe_split": {"columns": ["table", "patient_id", ...],
                         "data": [["patients", "P1", ...], ...]},
     "params": {"inspections": 20}}

The rows are validated against the contract like a batch folder (a broken
rule is an error naming the table, column and rows).

Output: one row per provider and per claim
------------------------------------------
``entity`` (``provider``/``claim``), ``id``, ``provider_id``, ``rank`` (1 = most
suspicious, within the entity), ``suspicion`` (0..1), ``selected`` (provider: in
the top ``inspections``; claim: flagged), ``money`` (provider: money at stake;
claim: fund_paid), ``schemes`` (suspected, providers only) and ``reasons``.

Params (optional): ``inspections`` (int, 20), ``level`` (``all``, ``providers`` or
``claims``), ``region`` and ``provider_type`` ("" = all).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import ParamSchema, ParamSpec

from fraudkit import __version__
from fraudkit.errors import FraudkitError
from fraudkit.io import TABLES, Batch, validate_batch

#: Name of the request column that says which table a row belongs to.
TABLE_COLUMN = "table"
#: Key of the saved fraudkit model folder among the pyfunc's artifacts.
ARTIFACT_KEY = "fraudkit_model"
#: Columns of the pyfunc's output, in order.
OUTPUT_COLUMNS = ["entity", "id", "provider_id", "rank", "suspicion", "selected", "money", "schemes", "reasons"]
LEVELS = ("all", "providers", "claims")

SIGNATURE = ModelSignature(inputs=None, params=ParamSchema([
    ParamSpec("inspections", "long", 20),
    ParamSpec("level", "string", "all"),
    ParamSpec("region", "string", ""),
    ParamSpec("provider_type", "string", ""),
]))


def batch_to_frame(batch: Batch) -> pd.DataFrame:
    """Stack a batch's four tables into the pyfunc's input frame (JSON-friendly values)."""
    parts = []
    for name in TABLES:
        frame = getattr(batch, name)[list(TABLES[name].column_names)].copy()
        for col in frame.columns:
            s = frame[col]
            if pd.api.types.is_datetime64_any_dtype(s.dtype):
                frame[col] = s.dt.strftime("%Y-%m-%d").astype(object).where(s.notna(), None)
            elif isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(s.dtype):
                frame[col] = s.astype(object).where(s.notna(), None)
        frame.insert(0, TABLE_COLUMN, name)
        parts.append(frame)
    columns = [TABLE_COLUMN] + list(dict.fromkeys(c for name in TABLES for c in TABLES[name].column_names))
    out = pd.concat(parts, ignore_index=True).reindex(columns=columns)
    return out.astype(object).where(out.notna(), None)


def serving_request(batch: Batch, **params) -> dict:
    """The JSON body for ``POST /invocations`` of ``mlflow models serve`` (``dataframe_split``)."""
    frame = batch_to_frame(batch)
    body = {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}
    if params:
        body["params"] = params
    return body


def frame_to_batch(model_input, source: str = "<request>") -> Batch:
    """The batch in a request: a stacked frame (see module docs), a dict of tables, or a Batch.

    Raises
    ------
    FraudkitError
        When the frame has no ``table`` column or names an unknown table;
        :class:`~fraudkit.io.BatchError` when the rows break the contract.
    """
    if isinstance(model_input, Batch):
        return model_input
    if isinstance(model_input, dict):
        unknown = sorted(set(model_input) - set(TABLES))
        if unknown:
            raise FraudkitError(f"input names unknown table {unknown[0]!r}; use {', '.join(TABLES)}")
        tables = {name: pd.DataFrame(model_input.get(name, [])) for name in TABLES}
    elif isinstance(model_input, pd.DataFrame):
        if TABLE_COLUMN not in model_input.columns:
            raise FraudkitError(f"input has no {TABLE_COLUMN!r} column: stack the batch's tables into one frame "
                                f"with a {TABLE_COLUMN!r} column naming {', '.join(TABLES)} (see fraudkit.tracking.batch_to_frame)")
        names = model_input[TABLE_COLUMN].astype(str)
        unknown = sorted(set(names) - set(TABLES))
        if unknown:
            raise FraudkitError(f"input column {TABLE_COLUMN!r} names unknown table {unknown[0]!r}; use {', '.join(TABLES)}")
        tables = {}
        for name, spec in TABLES.items():
            rows = model_input[names.eq(name).to_numpy()]
            cols = [c for c in spec.column_names if c in model_input.columns]
            tables[name] = rows[cols].reset_index(drop=True)
    else:
        raise FraudkitError(f"cannot score a {type(model_input).__name__}; pass a DataFrame with a {TABLE_COLUMN!r} column")
    for name, spec in TABLES.items():
        if len(tables[name]) == 0:  # an empty table still has the contract's columns
            tables[name] = pd.DataFrame({c: pd.Series(dtype=object) for c in spec.column_names})
    return validate_batch(Batch(**tables, source=source))


def scores_frame(result, level: str = "all") -> pd.DataFrame:
    """The pyfunc's output (see module docs) from a :class:`~fraudkit.pipeline.ScoreResult`."""
    if level not in LEVELS:
        raise FraudkitError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    parts = []
    if level in ("all", "providers"):
        p = result.providers
        parts.append(pd.DataFrame({
            "entity": "provider", "id": p["provider_id"].astype(str), "provider_id": p["provider_id"].astype(str),
            "rank": p["rank"].astype("int64"), "suspicion": p["suspicion"].astype(float),
            "selected": p["inspect"].astype(bool), "money": p["money_at_stake"].astype(float),
            "schemes": p["schemes"].fillna("").astype(str), "reasons": p["reasons"].fillna("").astype(str),
        }))
    if level in ("all", "claims"):
        c = result.claims.sort_values(["suspicion", "claim_id"], ascending=[False, True], kind="stable")
        parts.append(pd.DataFrame({
            "entity": "claim", "id": c["claim_id"].astype(str), "provider_id": c["provider_id"].astype(str),
            "rank": np.arange(1, len(c) + 1, dtype="int64"), "suspicion": c["suspicion"].astype(float),
            "selected": c["flagged"].astype(bool), "money": c["fund_paid"].astype(float),
            "schemes": "", "reasons": c["reasons"].fillna("").astype(str),
        }))
    out = pd.concat(parts, ignore_index=True)[OUTPUT_COLUMNS]
    out["suspicion"] = out["suspicion"].fillna(0.0)
    out["money"] = out["money"].fillna(0.0)
    return out


class FraudkitPyfunc(mlflow.pyfunc.PythonModel):
    """Scores a batch with a saved fraudkit model (loaded hash-checked by :func:`fraudkit.pipeline.load_model`)."""

    def load_context(self, context) -> None:
        from fraudkit.pipeline import load_model

        self.model = load_model(context.artifacts[ARTIFACT_KEY])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        # (MLflow infers no schema from a DataFrame hint: the stacked frame is validated here.)
        params = {**{p.name: p.default for p in SIGNATURE.params.params}, **(params or {})}
        batch = frame_to_batch(model_input)
        inspections = int(params["inspections"])
        if inspections < 1:
            raise FraudkitError(f"inspections must be at least 1, got {inspections}")
        result = self.model.score(batch, inspections=inspections, region=params["region"] or None,
                                  provider_type=params["provider_type"] or None)
        return scores_frame(result, params["level"])


def log_fraud_model(model_folder: str | Path, name: str = "model"):
    """Log a saved fraudkit model folder as a pyfunc model of the active run; returns MLflow's ModelInfo.

    The pyfunc is logged "from code" (:mod:`fraudkit.tracking._pyfunc_entry`), so loading it
    unpickles nothing but the fraudkit model, and that only after its hash check.
    """
    import shutil
    import tempfile
    import warnings

    manifest = json.loads((Path(model_folder) / "manifest.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="fraudkit-pyfunc-") as tmp:
        # The artifact keeps its folder's name; give it a fixed one that load_model_uri can find.
        folder = Path(tmp) / ARTIFACT_KEY
        shutil.copytree(model_folder, folder)
        with warnings.catch_warnings():
            # MLflow suggests type hints and an input example; the signature and the
            # logged request_example.json document the input instead.
            warnings.filterwarnings("ignore", message=".*(type hints|input example|input_example).*")
            return _log(name, folder, manifest)


def _log(name: str, folder: Path, manifest: dict):
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(Path(__file__).with_name("_pyfunc_entry.py")),
        artifacts={ARTIFACT_KEY: str(folder)},
        signature=SIGNATURE,
        # fraudkit itself must be importable where the model is served (`--env-manager local`).
        pip_requirements=[f"fraudkit=={__version__}", f"mlflow=={mlflow.__version__}"],
        metadata={"fraudkit_version": __version__, "fraudkit_model_sha256": manifest.get("sha256")},
    )

"""``fraudkit evaluate``: measure the output of ``fraudkit score`` against a batch's labels."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import typer
from rich.table import Table

from ._app import UserError, app, console


def _detector_columns(folder: Path) -> tuple[dict[str, pd.Series], dict[str, pd.Series]]:
    """Per-detector ``score_*`` columns of the score output, claims and providers."""
    claims, providers = {}, {}
    path = folder / "claims.parquet"
    if path.is_file():
        frame = pd.read_parquet(path)
        for col in [c for c in frame.columns if c.startswith("score_")]:
            claims[col[6:]] = pd.Series(frame[col].to_numpy(dtype=float), index=frame["claim_id"].astype(str).to_numpy())
    path = folder / "providers.csv"
    if path.is_file():
        frame = pd.read_csv(path, dtype={"provider_id": str})
        for col in [c for c in frame.columns if c.startswith("score_")]:
            providers[col[6:]] = pd.Series(pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float),
                                           index=frame["provider_id"].to_numpy())
    return claims, providers


def _read_scores(folder: Path) -> tuple[pd.Series | None, pd.Series | None]:
    if not folder.is_dir():
        raise UserError(f"--scores {folder}: not a folder (expected the output folder of `fraudkit score`)")
    claims = providers = None
    path = folder / "claims.parquet"
    if path.is_file():
        frame = pd.read_parquet(path, columns=None)
        _need(frame, path, ("claim_id", "suspicion"))
        claims = pd.Series(frame["suspicion"].to_numpy(dtype=float), index=frame["claim_id"].astype(str).to_numpy())
    path = folder / "providers.csv"
    if path.is_file():
        frame = pd.read_csv(path, dtype={"provider_id": str})
        _need(frame, path, ("provider_id", "suspicion"))
        providers = pd.Series(frame["suspicion"].to_numpy(dtype=float), index=frame["provider_id"].astype(str).to_numpy())
    if claims is None and providers is None:
        raise UserError(f"--scores {folder}: holds neither claims.parquet nor providers.csv (the output of `fraudkit score`)")
    return claims, providers


def _need(frame: pd.DataFrame, path: Path, columns) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")


@app.command()
def evaluate(
    batch: Path = typer.Argument(..., help="Labelled batch folder (with labels/)."),
    scores: Path = typer.Option(..., "--scores", help="Output folder of `fraudkit score` (claims.parquet, providers.csv)."),
    k: int = typer.Option(None, "--k", min=1, help="Inspection budget; default = number of fraudulent providers."),
    json_out: Path = typer.Option(None, "--json", help="Also write the metrics as JSON to this file."),
) -> None:
    """Precision@k, money captured, PR-AUC and per-scheme recall of SCORES against BATCH's labels."""
    from fraudkit.evaluate import evaluate as run
    from fraudkit.io import load_batch, load_labels

    labels = load_labels(batch, required_for="evaluation")
    claim_scores, provider_scores = _read_scores(scores)
    loaded = load_batch(batch)
    metrics = run(labels, loaded.claims, claim_scores, provider_scores, k=k)
    table = Table(title=f"fraudkit evaluate {batch}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    claim_cols, provider_cols = _detector_columns(scores)
    if claim_cols or provider_cols:
        per = Table(title="per detector (score_* columns)")
        for col in ("detector", "claims.pr_auc", "providers.pr_auc", "providers.precision_at_k"):
            per.add_column(col, justify="left" if col == "detector" else "right")
        for name in sorted(set(claim_cols) | set(provider_cols)):
            m = run(labels, loaded.claims, claim_cols.get(name), provider_cols.get(name), k=k)
            cells = [m.get(c) for c in ("claims.pr_auc", "providers.pr_auc", "providers.precision_at_k")]
            per.add_row(name, *["" if v is None else f"{v:.3f}" for v in cells])
            for key, value in m.items():
                if key.startswith(("claims.pr_auc", "providers.pr_auc", "providers.precision_at_k")):
                    metrics[f"detector.{name}.{key}"] = value
        console.print(per)
    if json_out is not None:
        from fraudkit.io import atomic_file

        with atomic_file(json_out) as tmp:
            Path(tmp).write_text(json.dumps(metrics, indent=2))
        console.print(f"metrics written to {json_out}")

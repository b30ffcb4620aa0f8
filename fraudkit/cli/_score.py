"""``fraudkit score``: rank a batch's providers for flight inspection and write the report."""

from __future__ import annotations

import time
from contextlib import contextmanager
from enum import Enum
from pathlib import Path

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

# One model resolver for the CLI and the Python API (fraudkit.score).
from fraudkit.api import DEFAULT_MODEL, resolve_model  # noqa: F401

from ._app import app, console, warn


class Engine(str, Enum):
    local = "local"
    dask = "dask"


class Refit(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


class OnBadRows(str, Enum):
    refuse = "refuse"
    reject = "reject"


@contextmanager
def stages(enabled: bool = True):
    """A Rich progress display with one line per stage; yields ``step(name)``."""
    if not enabled:
        yield lambda name: None
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=False) as bar:
        current = {"task": None, "t": time.perf_counter()}

        def step(name: str) -> None:
            if current["task"] is not None:
                bar.update(current["task"], completed=1, total=1)
            current["task"] = bar.add_task(name, total=None)

        yield step
        if current["task"] is not None:
            bar.update(current["task"], completed=1, total=1)


def print_ranking(providers, k: int) -> None:
    """The top k as a compact table; the full list is in providers.csv and the report."""
    table = Table(title=f"Top {min(k, len(providers))} providers for flight inspection", show_lines=False)
    table.add_column("rank", justify="right", no_wrap=True, min_width=4)
    table.add_column("provider", no_wrap=True, min_width=8)
    table.add_column("type", no_wrap=True, min_width=8)
    table.add_column("suspicion", justify="right", no_wrap=True, min_width=9)
    table.add_column("at stake", justify="right", no_wrap=True, min_width=10)
    table.add_column("top reason", no_wrap=True)
    room = max(20, console.width - 70)
    for row in providers.head(k).itertuples():
        kind = f"{row.provider_type} {row.tier}" if row.provider_type == "hospital" else str(row.provider_type)
        schemes = f"[{row.schemes}] " if isinstance(row.schemes, str) and row.schemes else ""
        reason = str(row.reasons).split(" | ")[0] if isinstance(row.reasons, str) else ""
        text = schemes + reason
        text = text if len(text) <= room else text[: room - 1] + "…"
        table.add_row(str(row.rank), Text(str(row.provider_id)), kind, f"{row.suspicion:.3f}",
                      f"¥{row.money_at_stake:,.0f}", Text(text))
    console.print(table)


def _prepare(batch: Path, refit: Refit, engine: Engine) -> None:
    """Before any work: warn when the batch looks too big for this machine's free memory, and start
    what its scoring will use beside the validation (fraudkit.pipeline.start_workers)."""
    import psutil

    from fraudkit.io import count_rows
    from fraudkit.pipeline import FraudModel, score_memory_gb, start_workers

    n = count_rows(batch, "claims")  # from the Parquet footers; None for CSV
    if not n:
        return
    if engine is Engine.local:
        start_workers(n)
    refits = refit is Refit.always or (refit is Refit.auto and n >= FraudModel.REFIT_FROM_CLAIMS)
    need, free = score_memory_gb(n, refits), psutil.virtual_memory().available / 1e9
    if need > free:
        warn(f"scoring {n:,} claims takes about {need:,.0f} GB of memory and {free:,.0f} GB are free: the system may "
             "stop fraudkit before it writes anything (OUT is only written whole); score the batch in parts, "
             "e.g. one month or one region at a time")


@app.command()
def score(
    batch: Path = typer.Argument(..., help="Batch folder to score."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for providers.csv, claims.parquet, report.html, summary.json."),
    model: str = typer.Option(None, "--model", "-m", help="Model folder or MLflow URI (models:/fraudkit@champion). Default: the shipped model."),
    inspections: int = typer.Option(20, "--inspections", "-k", min=1, help="Inspection budget: how many providers to send teams to."),
    region: str = typer.Option(None, "--region", help="Rank only providers of this pooling region."),
    provider_type: str = typer.Option(None, "--provider-type", help="Rank only hospitals, clinics or pharmacies."),
    outcomes: Path = typer.Option(None, "--outcomes", help="CSV/Parquet of past inspection outcomes (provider_id, outcome)."),
    on_bad_rows: OnBadRows = typer.Option(OnBadRows.refuse, "--on-bad-rows", help="refuse: stop at the first broken rule; reject: score valid rows, write bad ones to rejects.parquet."),
    refit: Refit = typer.Option(Refit.auto, "--refit", help="auto: learn the statistics from the batch itself when it has 30,000 claims or more (its own reference) or the model knows under half of its item codes (another catalogue); always; never (the model's statistics as they are)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.html."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    engine: Engine = typer.Option(Engine.local, "--engine", help="local: this process; dask: features per part of the patients and row-wise stages on a Dask cluster (same files)."),
    scheduler: str = typer.Option(None, "--scheduler", help="With --engine dask: address of a running scheduler (default: a LocalCluster)."),
) -> None:
    """Score BATCH and rank its providers for flight inspection; write the results into OUT atomically."""
    from fraudkit.io import atomic_dir, load_batch

    if scheduler is not None and engine is not Engine.dask:
        raise typer.BadParameter("needs --engine dask", param_hint="--scheduler")
    if provider_type is not None and provider_type not in ("hospital", "clinic", "pharmacy"):
        raise typer.BadParameter("must be hospital, clinic or pharmacy", param_hint="--provider-type")
    _prepare(batch, refit, engine)
    started = time.perf_counter()
    with stages(not quiet) as step:
        step("loading model")
        fitted = resolve_model(model)
        step(f"validating {batch}")
        loaded = load_batch(batch, on_bad_rows=on_bad_rows.value)
        known = None
        if outcomes is not None:
            from fraudkit.outcomes import load_outcomes

            # seeds propagation, trains the re-ranker, moves inspected providers after the others
            known = load_outcomes(outcomes, loaded)
        fitted, refit_note = fitted.adapted(loaded, refit.value, progress=step)
        options = dict(inspections=inspections, region=region, provider_type=provider_type, outcomes=known, progress=step)
        if engine is Engine.dask:
            from fraudkit.engine import score_dask

            step("starting Dask cluster" if scheduler is None else f"connecting to {scheduler}")
            result = score_dask(fitted, loaded, scheduler=scheduler, **options)
        else:
            result = fitted.score(loaded, **options)
        result.summary["refit_on_batch"] = bool(refit_note)
        step("writing outputs")
        with atomic_dir(out) as tmp:
            result.write(tmp)
            if len(loaded.rejects):
                loaded.rejects.to_parquet(tmp / "rejects.parquet", index=False)
            if report:
                from fraudkit.report import write_report

                write_report(result, loaded, tmp / "report.html")
    elapsed = time.perf_counter() - started
    for warning in loaded.warnings:
        warn(warning)
    if refit_note:
        warn(refit_note)
    print_ranking(result.providers, inspections)
    console.print(f"Scored {len(loaded.claims):,} claims in {elapsed:.1f} s ({len(loaded.claims) / max(elapsed, 1e-9):,.0f} claims/s).")
    if len(loaded.rejects):
        console.print(f"[yellow]{len(loaded.rejects):,} rows rejected[/]: {out / 'rejects.parquet'}")
    console.print(f"Ranked providers: {out / 'providers.csv'}")
    console.print(f"Scored claims:    {out / 'claims.parquet'}")
    if report:
        console.print(f"Report:           {out / 'report.html'}")
    console.print(f"Summary:          {out / 'summary.json'}")

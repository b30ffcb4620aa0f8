"""``fraudkit generate``: write a labelled synthetic claims batch."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ._app import app, console, fail


class _Format(str, Enum):
    parquet = "parquet"
    csv = "csv"


@app.command("generate")
def generate_command(
    scenario: Path = typer.Option(..., "--scenario", help="Scenario YAML, e.g. synthetic/default.yaml."),
    out: Path = typer.Option(..., "--out", help="Batch folder to write (replaced atomically)."),
    claims: Optional[int] = typer.Option(None, "--claims", help="Number of claims (default: the scenario's)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same scenario, seed and claims give the same files."),
    fmt: _Format = typer.Option(_Format.parquet, "--format", help="File format of the tables."),
    parts: Optional[int] = typer.Option(None, "--parts", help="Write claims/ and items/ as folders of N Parquet parts."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="With --parts: processes writing parts side by side "
                                          "(default: one per core from 500,000 claims). Same files whatever the number."),
) -> None:
    """Generate a synthetic batch with planted, labelled fraud (labels/ holds the ground truth)."""
    from fraudkit.synthetic import Scenario, ScenarioError, generate_to

    try:
        sc = Scenario.from_yaml(scenario)
        started = time.perf_counter()
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("planning claims", total=None)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, description="generating items", completed=done, total=total)

            summary = generate_to(sc, out, n_claims=claims, seed=seed, fmt=fmt.value, parts=parts, progress=progress,
                                  workers=workers)
        elapsed = time.perf_counter() - started
    except ScenarioError as exc:
        fail(str(exc))
    console.print(f"[green]wrote[/] {out} ({fmt.value}{f', {parts} parts' if parts else ''}) in {elapsed:.1f} s: "
                  f"{summary.claims:,} claims, {summary.items:,} items, {summary.patients:,} patients, "
                  f"{summary.providers:,} providers; {summary.fraudulent_claims:,} fraudulent claims.", highlight=False)
    per_scheme = ", ".join(f"{name} {count}" for name, count in summary.providers_by_scheme.items())
    console.print(f"fraudulent providers per scheme: {per_scheme}", highlight=False)
    per_patient = ", ".join(f"{name} {count}" for name, count in summary.patients_by_scheme.items())
    console.print(f"fraudulent patients per scheme: {per_patient}", highlight=False)

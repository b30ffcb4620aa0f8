"""``fraudkit validate``: check a batch against the contract."""

from __future__ import annotations

from pathlib import Path

import typer

from fraudkit.io import load_batch

from ._app import app, console


@app.command()
def validate(
    batch: Path = typer.Argument(..., help="Batch folder (patients, providers, claims, items)."),
) -> None:
    """Check BATCH against the claims batch contract; exit 2 naming the first broken rule."""
    with console.status(f"validating {batch} ..."):
        loaded = load_batch(batch)
    for warning in loaded.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    sizes = ", ".join(f"{len(f):,} {n}" for n, f in loaded.tables().items())
    console.print(f"[green]ok[/] {batch}: {sizes}")

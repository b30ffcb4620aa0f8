"""``fraudkit validate``: check a batch against the contract."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from fraudkit.io import load_batch

from ._app import app, console, warn


@app.command()
def validate(
    batch: Path = typer.Argument(..., help="Batch folder (patients, providers, claims, items)."),
) -> None:
    """Check BATCH against the claims batch contract; exit 2 naming the first broken rule."""
    with console.status(f"validating {batch} ..."):
        loaded = load_batch(batch)
    for warning in loaded.warnings:
        warn(warning)
    sizes = ", ".join(f"{len(f):,} {n}" for n, f in loaded.tables().items())
    console.print(Text.assemble(("ok ", "green"), f"{batch}: {sizes}"))

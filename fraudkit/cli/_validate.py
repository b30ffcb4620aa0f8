"""``fraudkit validate``: check a batch against the contract."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from fraudkit.io import atomic_file, load_batch

from ._app import app, console, warn
from ._score import OnBadRows


@app.command()
def validate(
    batch: Path = typer.Argument(..., help="Batch folder (patients, providers, claims, items)."),
    on_bad_rows: OnBadRows = typer.Option(OnBadRows.refuse, "--on-bad-rows", help="refuse: exit 2 at the first broken rule; reject: count the rows that would be set aside."),
    rejects: Path = typer.Option(None, "--rejects", help="With --on-bad-rows reject: write the rejected rows and reasons to this Parquet file."),
) -> None:
    """Check BATCH against the claims batch contract; exit 2 naming the first broken rule."""
    with console.status(f"validating {batch} ..."):
        loaded = load_batch(batch, on_bad_rows=on_bad_rows.value)
    for warning in loaded.warnings:
        warn(warning)
    sizes = ", ".join(f"{len(f):,} {n}" for n, f in loaded.tables().items())
    if len(loaded.rejects):
        per_table = loaded.rejects["table"].value_counts().to_dict()
        console.print(Text(f"{len(loaded.rejects):,} rows would be rejected: "
                           + ", ".join(f"{n:,} {t}" for t, n in per_table.items()), style="yellow"))
        if rejects is not None:
            with atomic_file(rejects) as tmp:
                loaded.rejects.to_parquet(tmp, index=False)
            console.print(f"Rejected rows and reasons: {rejects}", highlight=False)
    console.print(Text.assemble(("ok ", "green"), f"{batch}: {sizes} valid"))

"""``fraudkit simulate-inspections``: replay the inspect → learn → re-rank loop on a labelled batch."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ._app import app, console


def _yuan(x: float) -> str:
    """Yuan with thousands separators below a million, 1.23M above (the table fits 80 columns)."""
    return f"{x / 1e6:,.2f}M" if abs(x) >= 1e6 else f"{x:,.0f}"


@app.command("simulate-inspections")
def simulate_inspections(
    batch: Path = typer.Argument(..., help="Labelled batch folder (with labels/), e.g. from `fraudkit generate`."),
    rounds: int = typer.Option(5, "--rounds", "-r", min=1, help="Rounds of inspections."),
    per_round: int = typer.Option(20, "--per-round", "-k", min=1, help="Providers inspected per round."),
    seed: int = typer.Option(0, "--seed", help="Seed of the model fitted on BATCH (ignored with --model)."),
    model: str = typer.Option(None, "--model", "-m", help="Model folder or MLflow URI; default: fit one on BATCH (labels unused)."),
    experiment: str = typer.Option("fraudkit", "--experiment", "-e", help="MLflow experiment to log to."),
    track: bool = typer.Option(True, "--track/--no-track", help="Log the run (per-round metrics, plot) to MLflow."),
    run_name: str = typer.Option(None, "--run-name", help="Name of the MLflow run."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Inspect the top PER_ROUND providers, reveal their labels as outcomes, retrain, re-rank; repeat.

    Each round's precision and money found (fund_paid of fraudulent claims at the confirmed
    providers) is compared with inspecting further down the unsupervised ranking.
    """
    from fraudkit.io import load_batch, load_labels
    from fraudkit.outcomes import simulate_inspections as run
    from fraudkit.outcomes._simulate import log_simulation

    from ._score import resolve_model, stages
    from ._train import _mlflow_errors, _store_hint

    labels = load_labels(batch, required_for="simulating inspections")
    with stages(not quiet) as step:
        step(f"loading {batch}")
        loaded = load_batch(batch)
        fitted = resolve_model(model) if model is not None else None
        result = run(loaded, labels, fitted, rounds=rounds, per_round=per_round, seed=seed, progress=step)
        run_id = store = None
        if track:
            step("logging to MLflow")
            with _mlflow_errors():
                run_id, store = log_simulation(result, experiment=experiment, run_name=run_name,
                                               tags={"data.source": str(batch)})

    table = Table(title=f"Simulated flight inspections on {batch}: {rounds} rounds × {per_round} "
                        f"({result.settings['fraudulent_providers']} fraudulent of {result.settings['providers']} providers); "
                        "learning vs the unsupervised ranking (base)")
    for col in ("round", "prec.", "base prec.", "found ¥", "base found ¥", "cum. prec.", "base cum.", "✓/✗ known"):
        table.add_column(col, justify="right")
    for row in result.rounds.to_dict("records"):
        table.add_row(str(row["round"]), f"{row['precision']:.2f}", f"{row['baseline_precision']:.2f}",
                      _yuan(row["money_found"]), _yuan(row["baseline_money_found"]),
                      f"{row['cumulative_precision']:.3f}", f"{row['baseline_cumulative_precision']:.3f}",
                      f"{row['confirmed_so_far']}/{row['cleared_so_far']}")
    console.print(table)
    last = result.rounds.iloc[-1]
    console.print(f"After {rounds} rounds: {last['cumulative_precision']:.3f} precision and ¥{last['cumulative_money']:,.0f} "
                  f"found with learning; {last['baseline_cumulative_precision']:.3f} and ¥{last['baseline_cumulative_money']:,.0f} "
                  "down the unsupervised ranking.")
    if rounds > 1:
        span = "Round 2" if rounds == 2 else f"Rounds 2–{rounds}"
        console.print(f"{span}: precision {result.rounds['precision'].iloc[1:].mean():.3f} with learning, "
                      f"{result.rounds['baseline_precision'].iloc[1:].mean():.3f} baseline (gain {result.gain(2):+.3f}).")
    if run_id:
        console.print(f"Run id:       {run_id}  (experiment {experiment!r})")
        console.print(f"Open the UI:  {_store_hint(store)}")

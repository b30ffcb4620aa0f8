"""``fraudkit train``, ``promote``, ``compare`` and ``tune``: models tracked in MLflow."""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from ._app import UserError, app, console

#: Metrics shown after training (all of them are logged).
HEADLINE = ["providers.precision_at_k", "providers.recall_at_k", "providers.money_at_k", "providers.pr_auc",
            "providers.roc_auc", "claims.pr_auc", "claims.roc_auc", "claims.recall_top"]


@contextmanager
def _mlflow_errors():
    """MLflow's own failures (store unreachable, bad URI) as one-paragraph user errors."""
    try:
        from mlflow.exceptions import MlflowException
    except ImportError:  # pragma: no cover - mlflow is a dependency
        yield
        return
    try:
        yield
    except MlflowException as exc:
        raise UserError(f"MLflow: {' '.join(str(exc.message).split())[:500]}") from None


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _store_hint(uri: str) -> str:
    return f"mlflow ui --backend-store-uri {uri}"


@app.command()
def train(
    batch: Path = typer.Argument(..., help="Batch folder to fit on (labels/ enable held-out metrics)."),
    config: Path = typer.Option(None, "--config", "-c", help="Model config YAML, e.g. models/config.yaml (omitted: the ModelConfig defaults, which that file spells out)."),
    experiment: str = typer.Option("fraudkit", "--experiment", "-e", help="MLflow experiment to log to."),
    register: bool = typer.Option(False, "--register/--no-register", help="Register the model as 'fraudkit' with the alias 'challenger'."),
    out: Path = typer.Option(None, "--out", "-o", help="Also save the model folder (model.joblib + manifest.json) here."),
    holdout: float = typer.Option(0.3, "--holdout", min=0.0, max=0.9, help="Share of the latest claims held out for the metrics (time split); 0 = fit on all."),
    eval_batch: Path = typer.Option(None, "--eval-batch", help="Measure on this separate labelled batch instead of a time split."),
    k: int = typer.Option(20, "--k", "-k", min=1, help="Inspection budget of precision@k and money@k."),
    track: bool = typer.Option(True, "--track/--no-track", help="Log to MLflow (--no-track needs --out)."),
    run_name: str = typer.Option(None, "--run-name", help="Name of the MLflow run."),
    scenario: Path = typer.Option(None, "--scenario", help="Scenario YAML BATCH was generated from (logged; default: one recorded in BATCH)."),
    outcomes: Path = typer.Option(None, "--outcomes", help="CSV/Parquet of past inspection outcomes of BATCH's providers "
                                  "(provider_id, inspected_on, outcome confirmed|cleared; optional patient_id, claim_id), kept with the model."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Fit the pipeline on BATCH, measure it on held-out data and log the run (params, metrics, figures, model) to MLflow.

    With --outcomes the model keeps the inspection verdicts: `score` with it (with or without
    its own --outcomes) ranks the inspected providers last, seeds propagation with the
    confirmed ones and retrains the outcome re-ranker on the scored batch.
    """
    from fraudkit.tracking import resolve_tracking_uri, train as run_train

    from ._score import stages

    with _mlflow_errors(), stages(not quiet) as step:
        result = run_train(batch, config, experiment=experiment, register=register, out=out, holdout=holdout,
                           eval_batch=eval_batch, k=k, track=track, run_name=run_name, scenario=scenario,
                           outcomes=outcomes, progress=step)
    console.print(f"Held out: {result.evaluation}.")
    if result.metrics:
        table = Table(title=f"Held-out metrics (k = {k})")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name in HEADLINE:
            if name in result.metrics:
                table.add_row(name, _fmt(result.metrics[name]))
        console.print(table)
    if result.model_folder is not None:
        console.print(f"Model saved:  {result.model_folder}")
    if result.run_id:
        uri = result.tracking_uri or resolve_tracking_uri()
        console.print(f"Run id:       {result.run_id}  (experiment {experiment!r})")
        console.print(f"Model:        runs:/{result.run_id}/model  ({result.model_uri})")
        if result.version is not None:
            console.print(f"Registered:   fraudkit version {result.version.version}, alias challenger")
        console.print(f"Open the UI:  {_store_hint(uri)}")
        console.print(f"Promote it:   fraudkit promote {result.run_id} --alias champion")
        console.print(f"Serve it:     MLFLOW_TRACKING_URI={uri} mlflow models serve -m runs:/{result.run_id}/model "
                      "--env-manager local -p 5001")


@app.command()
def promote(
    run_id: str = typer.Argument(..., help="Run id printed by `fraudkit train`."),
    alias: str = typer.Option("champion", "--alias", "-a", help="Alias to point at the run's model version."),
) -> None:
    """Register RUN_ID's model as 'fraudkit' (once) and set ALIAS on that version."""
    from fraudkit.tracking import promote as run_promote

    with _mlflow_errors():
        version = run_promote(run_id, alias)
    console.print(f"fraudkit version {version.version} (run {run_id}) now carries the alias {alias!r}; "
                  f"aliases: {', '.join(sorted(version.aliases))}")
    console.print(f"Score with it:  fraudkit score BATCH --model models:/fraudkit@{alias} --out OUT")


@app.command()
def compare(
    run_a: str = typer.Argument(..., help="Run id or alias (e.g. champion)."),
    run_b: str = typer.Argument(..., help="Run id or alias (e.g. challenger)."),
) -> None:
    """Print two runs' metrics side by side with the difference (B − A) and the settings that differ."""
    from fraudkit.tracking import compare_runs

    with _mlflow_errors():
        c = compare_runs(run_a, run_b)
    console.print(Text(f"A = {c.a_label}   (run {c.a})"))
    console.print(Text(f"B = {c.b_label}   (run {c.b})"))
    table = Table(title="fraudkit compare: held-out metrics")
    table.add_column("metric", no_wrap=True)
    table.add_column("A", justify="right", no_wrap=True)
    table.add_column("B", justify="right", no_wrap=True)
    table.add_column("B − A", justify="right", no_wrap=True)
    for row in c.metrics.itertuples(index=False):
        diff = "–" if row.difference is None or math.isnan(row.difference) else f"{row.difference:+.4f}"
        style = "green" if diff.startswith("+") and diff != "+0.0000" else ("red" if diff.startswith("-") and diff != "-0.0000" else "")
        table.add_row(Text(row.metric), _fmt(row.a), _fmt(row.b), f"[{style}]{diff}[/]" if style else diff)
    console.print(table)
    if len(c.params):
        params = Table(title="Settings that differ")
        params.add_column("param")
        params.add_column("A")
        params.add_column("B")
        for row in c.params.itertuples(index=False):
            params.add_row(Text(row.param), Text(str(row.a)), Text(str(row.b)))  # values are data, not markup
        console.print(params)
    if not c.same_data:
        console.print("[yellow]note:[/] the two runs were measured on different data (fingerprint, evaluation batch "
                      "or cut-off differ): a difference mixes the model and the data.")


@app.command()
def tune(
    batch: Path = typer.Argument(..., help="Labelled batch folder."),
    trials: int = typer.Option(10, "--trials", "-n", min=1, help="Number of settings to try (trial 0 = the starting config)."),
    config: Path = typer.Option(None, "--config", "-c", help="Starting config YAML."),
    experiment: str = typer.Option("fraudkit", "--experiment", "-e", help="MLflow experiment to log to."),
    holdout: float = typer.Option(0.3, "--holdout", min=0.05, max=0.9, help="Share of the latest claims held out."),
    k: int = typer.Option(20, "--k", "-k", min=1, help="Inspection budget of the objective precision@k."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random search."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the best config as YAML here."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Random search over model settings on BATCH (nested MLflow runs), maximising provider precision@k."""
    from fraudkit.tracking import tune as run_tune

    from ._score import stages

    if out is not None and out.exists() and out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name for the best config (e.g. best.yaml)")
    with _mlflow_errors(), stages(not quiet) as step:
        result = run_tune(batch, trials, config, experiment=experiment, holdout=holdout, k=k, seed=seed, progress=step)
    table = Table(title=f"{trials} trials (objective providers.precision_at_k, k = {k})")
    for col in ("trial", "precision@k", "PR-AUC", "changed settings"):
        table.add_column(col)
    for row in result.trials.to_dict("records"):
        table.add_row(str(row["trial"]), _fmt(row["providers.precision_at_k"]), _fmt(row["providers.pr_auc"]),
                      Text(row["changed"] or "(starting config)"))
    console.print(table)
    if out is not None:
        import yaml

        from fraudkit.io import atomic_file

        with atomic_file(out) as tmp:
            Path(tmp).write_text(yaml.safe_dump(result.best_config.to_dict(), sort_keys=True))
        console.print(f"Best config written to {out}")
    best = result.best_metrics
    console.print(f"Best: trial run {result.best_run_id} with precision@k {_fmt(best.get('providers.precision_at_k'))}, "
                  f"PR-AUC {_fmt(best.get('providers.pr_auc'))}; settings {result.best_params or '(the starting config)'}")
    console.print(f"Parent run:  {result.parent_run_id} (best_config.yaml, trials.csv)")

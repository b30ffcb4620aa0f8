"""Learning from inspection outcomes, measured: simulated inspection rounds vs the unsupervised ranking.

For each scenario and seed: generate a labelled batch, fit the default model on it (labels
unused) and run :func:`fraudkit.outcomes.simulate_inspections`: each round inspects the top
``per_round`` uninspected providers, reveals their labels as outcomes, retrains and re-ranks.
The baseline inspects further down the unsupervised ranking. "best possible" is an oracle
that makes the same first round and then inspects fraudulent providers first: with few fraudulent providers in a batch, later
rounds *cannot* be as precise as round one (the pool runs dry), so each arm is shown against it.
A world unlike the generator's (:func:`fraudkit.features.make_toy_batch`) is run too.

Writes a markdown report to stdout (nothing is written to the repository)::

    .venv/bin/python benchmarks/outcomes.py                                  # default + hard, 200k claims, seeds 1-4
    .venv/bin/python benchmarks/outcomes.py --claims 30000 --seeds 1 2 --per-round 10
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from fraudkit.io import load_batch, load_labels
from fraudkit.outcomes import simulate_inspections
from fraudkit.synthetic import Scenario, generate_to

ROOT = Path(__file__).resolve().parents[1]


def best_possible(fraudulent: int, first: float, rounds: int, per_round: int) -> list[float]:
    """Precision per round of an oracle that makes the shared round one (precision ``first``), then inspects fraudulent providers first."""
    out = [first]
    left = fraudulent - int(round(first * per_round))
    for _ in range(rounds - 1):
        hits = min(per_round, max(left, 0))
        out.append(hits / per_round)
        left -= hits
    return out


def one(batch, labels, name: str, seed: int, rounds: int, per_round: int) -> pd.DataFrame:
    t0 = time.perf_counter()
    result = simulate_inspections(batch, labels, rounds=rounds, per_round=per_round, seed=0)
    r = result.rounds.copy()
    r["best_possible"] = best_possible(result.settings["fraudulent_providers"], r["precision"].iloc[0], rounds, per_round)
    r["scenario"], r["seed"] = name, seed
    r["fraudulent"], r["providers"] = result.settings["fraudulent_providers"], result.settings["providers"]
    r["seconds"] = time.perf_counter() - t0
    return r


def generated(scenario: str, claims: int, seed: int, rounds: int, per_round: int) -> pd.DataFrame:
    with tempfile.TemporaryDirectory(prefix="fk-outcomes-") as tmp:
        path = Path(tmp) / "batch"
        generate_to(Scenario.from_yaml(ROOT / "synthetic" / f"{scenario}.yaml"), path, n_claims=claims, seed=seed)
        batch, labels = load_batch(path), load_labels(path)
    return one(batch, labels, scenario, seed, rounds, per_round)


def table(frame: pd.DataFrame) -> str:
    """Per round, mean over seeds: precision, cumulative precision and money found, learning / baseline / best."""
    g = frame.groupby("round")
    out = pd.DataFrame({
        "precision learning": g["precision"].mean(),
        "baseline": g["baseline_precision"].mean(),
        "best possible": g["best_possible"].mean(),
        "cum. precision learning": g["cumulative_precision"].mean(),
        "cum. baseline": g["baseline_cumulative_precision"].mean(),
        "money found learning (M¥, cum.)": g["cumulative_money"].mean() / 1e6,
        "money baseline (M¥, cum.)": g["baseline_cumulative_money"].mean() / 1e6,
    })
    lines = ["| round | " + " | ".join(out.columns) + " |", "|---:|" + "---:|" * len(out.columns)]
    for rnd, row in out.iterrows():
        lines.append(f"| {rnd} | " + " | ".join(f"{v:.3f}" if "money" not in c else f"{v:.2f}" for c, v in row.items()) + " |")
    return "\n".join(lines)


def per_seed(frame: pd.DataFrame) -> str:
    lines = ["| batch | seed | fraudulent / providers | precision per round, learning | baseline | rounds 2+ learning | baseline | best possible | money learning (M¥) | baseline |",
             "|---|---:|---:|---|---|---:|---:|---:|---:|---:|"]
    for (name, seed), r in frame.groupby(["scenario", "seed"], sort=False):
        later = r[r["round"] >= 2]
        lines.append(
            f"| {name} | {seed} | {r['fraudulent'].iloc[0]} / {r['providers'].iloc[0]} | "
            f"{' '.join(f'{p:.2f}' for p in r['precision'])} | {' '.join(f'{p:.2f}' for p in r['baseline_precision'])} | "
            f"{later['precision'].mean():.3f} | {later['baseline_precision'].mean():.3f} | {later['best_possible'].mean():.3f} | "
            f"{r['cumulative_money'].iloc[-1] / 1e6:.2f} | {r['baseline_cumulative_money'].iloc[-1] / 1e6:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=200_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--scenarios", nargs="+", default=["default", "hard"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=20)
    parser.add_argument("--toy-claims", type=int, default=30_000, help="claims of the toy batch (0: skip it)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    frames = {}
    for scenario in args.scenarios:
        frames[scenario] = pd.concat([generated(scenario, args.claims, s, args.rounds, args.per_round) for s in args.seeds],
                                     ignore_index=True)
    if args.toy_claims:
        from fraudkit.features import make_toy_batch

        batch, labels = make_toy_batch(args.toy_claims, seed=3)
        frames["toy"] = one(batch, labels, "toy", 3, 4, 5)

    print(f"# Learning from inspection outcomes: {args.rounds} rounds × {args.per_round} inspections\n")
    print(f"Batches: {', '.join(args.scenarios)} at {args.claims:,} claims, seeds {' '.join(map(str, args.seeds))}"
          + (f"; toy batch (make_toy_batch({args.toy_claims}, seed=3), 4 rounds × 5)" if args.toy_claims else "") + ".\n")
    for name, frame in frames.items():
        later = frame[frame["round"] >= 2]
        gain = later["precision"].mean() - later["baseline_precision"].mean()
        last = frame[frame["round"] == frame["round"].max()]
        print(f"## {name}\n")
        print(table(frame) + "\n")
        print(f"Rounds 2+: precision {later['precision'].mean():.3f} learning vs {later['baseline_precision'].mean():.3f} "
              f"baseline ({gain:+.3f}; best possible {later['best_possible'].mean():.3f}). Money found after the last round: "
              f"{last['cumulative_money'].mean() / 1e6:.2f} M¥ learning vs {last['baseline_cumulative_money'].mean() / 1e6:.2f} M¥. "
              f"{frame.groupby('seed')['seconds'].first().mean():.0f} s per batch.\n")
        print(per_seed(frame) + "\n")


if __name__ == "__main__":
    main()

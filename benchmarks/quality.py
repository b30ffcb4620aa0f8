"""Detection quality of the whole pipeline on planted fraud, and of each detector family alone.

For each scenario: generate a labelled batch, fit the default model on it, score it three
ways (all detectors; the tabular family only: isolation forests and the claim roll-up; the
graph family only: dense blocks and rings), and print provider precision@k (k = number of
fraudulent providers), the share of fraudulent money in the top k and top 5 % of providers,
provider PR-AUC and claim PR-AUC. Writes ``benchmarks/results/quality.md``.

    python benchmarks/quality.py                      # 300k claims, default + hard
    python benchmarks/quality.py --claims 1000000     # the issue's 1M-claim setting
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import pandas as pd

from fraudkit.evaluate import evaluate
from fraudkit.io import load_batch, load_labels
from fraudkit.pipeline import FraudModel, ModelConfig
from fraudkit.synthetic import Scenario, generate_to

ROOT = Path(__file__).resolve().parents[1]
TABULAR = ("claim_features", "claim_signals", "patient_features", "provider_features", "provider_signals",
           "claim_outliers", "patient_outliers")
GRAPH = ("dense_blocks", "rings", "egonet", "propagation")
FAMILIES = {"combined": (), "tabular only": GRAPH, "graph only": TABULAR}


def measure(scenario: str, claims: int, seed: int) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="fk-quality-") as tmp:
        path = Path(tmp) / "batch"
        generate_to(Scenario.from_yaml(ROOT / "synthetic" / f"{scenario}.yaml"), path, n_claims=claims, seed=seed)
        batch, labels = load_batch(path), load_labels(path)
    base = ModelConfig()
    t0 = time.perf_counter()
    model = FraudModel(base).fit(batch)
    fit_s = time.perf_counter() - t0
    rows = []
    for family, off in FAMILIES.items():
        model.config = copy.deepcopy(base)
        model.config.weights = {**base.weights, **{name: 0.0 for name in off}}
        model.config.provider_weights = {name: (0.0 if name in off else w) for name, w in base.provider_weights.items()}
        t0 = time.perf_counter()
        result = model.score(batch)
        score_s = time.perf_counter() - t0
        m = evaluate(labels, batch.claims, result.claims.set_index("claim_id")["suspicion"],
                     result.providers.set_index("provider_id")["suspicion"])
        rows.append({
            "scenario": scenario, "claims": claims, "seed": seed, "ranking": family, "k": int(m["k"]),
            "precision@k": m["providers.precision_at_k"], "money@k": m["providers.money_at_k"],
            "money top 5%": m["providers.money_top"], "provider PR-AUC": m["providers.pr_auc"],
            "claim PR-AUC": m["claims.pr_auc"], "fit s": fit_s, "score s": score_s,
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=300_000)
    parser.add_argument("--scenarios", nargs="+", default=["default", "hard"])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "quality.md")
    args = parser.parse_args()
    rows = []
    for i, scenario in enumerate(args.scenarios):
        rows += measure(scenario, args.claims, args.seed + i)
    table = pd.DataFrame(rows)
    text = table.to_markdown(index=False, floatfmt=".3f") if _has_tabulate() else table.to_string(index=False)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"# Detection quality\n\n`python benchmarks/quality.py --claims {args.claims}`\n\n{text}\n")
    print(f"\nwritten to {args.out}")


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()

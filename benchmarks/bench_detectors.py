"""Benchmark: fraudkit's isolation forest against PyOD baselines, and scoring speed.

For each scenario (default: ``default`` and ``hard``) a batch is generated (cached under
``data/bench/``), features are built once, and every detector scores the same claim
feature matrix; claim scores are rolled up to providers (money-weighted mean, see
``fraudkit.detectors.rollup``). The provider-level forest on provider features is
reported too. Then the scoring speed: features (``FeatureBuilder.transform``) plus
``IsolationForestDetector.score_samples`` in claims per second, and bare scikit-learn
``IsolationForest.score_samples`` on the same matrix, measured in the same run.

    .venv/bin/python benchmarks/bench_detectors.py                       # 100k claims, default + hard
    .venv/bin/python benchmarks/bench_detectors.py --claims 200000 --speed-claims 1000000

Writes ``benchmarks/results/detectors.csv`` and ``.md`` (tables) and prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def generated(scenario: str, claims: int, seed: int) -> Path:
    """A generated batch folder, cached by scenario, size and seed."""
    from fraudkit.synthetic import Scenario, generate_to

    out = REPO / "data" / "bench" / f"{scenario}-{claims}-{seed}"
    if not (out / "labels").is_dir():
        generate_to(Scenario.from_yaml(REPO / "synthetic" / f"{scenario}.yaml"), out, n_claims=claims, seed=seed)
    return out


def quality(scenario: str, claims: int, seed: int, max_fit: int) -> pd.DataFrame:
    from fraudkit.detectors import IsolationForestDetector
    from fraudkit.evaluate import compare_detectors, evaluate
    from fraudkit.features import FeatureBuilder
    from fraudkit.io import load_batch, load_labels

    folder = generated(scenario, claims, seed)
    batch, labels = load_batch(folder), load_labels(folder)
    features = FeatureBuilder().fit(batch).transform(batch)
    table = compare_detectors(features, labels, batch.claims, random_state=seed, max_fit=max_fit)
    det = IsolationForestDetector(entity="provider", random_state=seed).fit(features.providers)
    m = evaluate(labels, batch.claims, provider_scores=det.scores(features.providers))
    table.loc["fraudkit.IsolationForest[provider features]", ["providers.pr_auc", "providers.precision_at_k",
                                                             "providers.money_at_k"]] = [
        m["providers.pr_auc"], m["providers.precision_at_k"], m["providers.money_at_k"]]
    ours = IsolationForestDetector(random_state=seed).fit(features.claims)
    recall = evaluate(labels, batch.claims, claim_scores=ours.scores(features.claims))
    per_scheme = {k.rsplit(".", 1)[1]: v for k, v in recall.items() if k.startswith("claims.recall_top.")}
    print(f"\n[{scenario}] {len(batch.claims):,} claims; recall of each scheme in the top 5 % of claims "
          f"(fraudkit claim forest): " + json.dumps({k: round(v, 3) for k, v in per_scheme.items()}))
    return table.reset_index().assign(scenario=scenario, claims=len(batch.claims))


def speed(claims: int, seed: int, n_estimators: int, max_samples: int, n_jobs: int | None) -> dict:
    """Claims per second of features + forest scoring, and of bare scikit-learn on the same matrix."""
    from sklearn.ensemble import IsolationForest

    from fraudkit.detectors import IsolationForestDetector
    from fraudkit.features import FeatureBuilder
    from fraudkit.io import load_batch

    batch = load_batch(generated("default", claims, seed))
    fb = FeatureBuilder().fit(batch)
    det = IsolationForestDetector(random_state=seed, n_estimators=n_estimators, max_samples=max_samples,
                                  n_jobs=n_jobs).fit(fb.transform(batch).claims)
    det.score_samples(fb.transform(batch).claims.iloc[:5000])  # compile / warm up once
    t0 = time.perf_counter()
    table = fb.transform(batch).claims
    t1 = time.perf_counter()
    det.score_samples(table)
    t2 = time.perf_counter()
    matrix = det._scaled(det._matrix(table), table).astype(np.float32)
    bare = IsolationForest(n_estimators=n_estimators, max_samples=max_samples, random_state=seed,
                           n_jobs=n_jobs).fit(matrix)
    from joblib import parallel_backend

    import numba

    threads = n_jobs if n_jobs and n_jobs > 0 else numba.get_num_threads()
    t3 = time.perf_counter()
    with parallel_backend("threading", n_jobs=threads):  # scikit-learn scores trees in threads only so
        bare.score_samples(matrix)
    t4 = time.perf_counter()
    n = len(table)
    return {"claims": n, "items": len(batch.items), "features_s": t1 - t0, "forest_s": t2 - t1,
            "claims_per_s": n / (t2 - t0), "forest_claims_per_s": n / (t2 - t1),
            "sklearn_forest_claims_per_s": n / (t4 - t3),
            "forest_speedup_vs_sklearn": (t4 - t3) / (t2 - t1),
            "pipeline_vs_bare_sklearn": (n / (t2 - t0)) / (n / (t4 - t3)),
            "n_estimators": n_estimators, "max_samples": max_samples, "threads": threads, "cpus": os.cpu_count()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenarios", nargs="+", default=["default", "hard"])
    ap.add_argument("--claims", type=int, default=100_000, help="claims per quality batch")
    ap.add_argument("--speed-claims", type=int, default=200_000, help="claims of the speed batch (0 = skip)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-fit", type=int, default=20_000, help="rows KNN is fitted on")
    ap.add_argument("--n-estimators", type=int, default=200)
    ap.add_argument("--max-samples", type=int, default=2048)
    ap.add_argument("--n-jobs", type=int, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "detectors")
    args = ap.parse_args(argv)

    tables = [quality(s, args.claims, args.seed, args.max_fit) for s in args.scenarios]
    table = pd.concat(tables, ignore_index=True)
    cols = ["scenario", "claims", "detector", "claims.pr_auc", "claims.roc_auc", "claims.recall_top",
            "providers.pr_auc", "providers.precision_at_k", "providers.money_at_k", "seconds"]
    table = table[cols]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out.with_suffix(".csv"), index=False, float_format="%.4f")
    text = table.to_markdown(index=False, floatfmt=".3f") if _has_tabulate() else table.to_string(index=False)
    print("\n" + text)
    if args.speed_claims:
        result = speed(args.speed_claims, args.seed, args.n_estimators, args.max_samples, args.n_jobs)
        print("\nspeed: " + json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))
        text += "\n\nspeed: " + json.dumps(result)
    args.out.with_suffix(".md").write_text(text + "\n")
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    sys.exit(main())

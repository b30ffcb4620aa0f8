"""Benchmark the synthetic generator: claims per second and peak memory.

    .venv/bin/python benchmarks/bench_generate.py            # 1M claims
    .venv/bin/python benchmarks/bench_generate.py --full     # 1M and 10M claims
    .venv/bin/python benchmarks/bench_generate.py --claims 200000 --scenario synthetic/hard.yaml

Each size runs in a fresh process (so peak RSS is that run's own) and writes a Parquet
batch with labels to a temporary folder, which is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _child(scenario: str, n: int, seed: int, parts: int | None) -> None:
    from fraudkit.synthetic import Scenario, generate_to

    out = Path(tempfile.mkdtemp(prefix="fk-bench-")) / "batch"
    sc = Scenario.from_yaml(scenario)
    started, cpu0 = time.perf_counter(), time.process_time()
    summary = generate_to(sc, out, n_claims=n, seed=seed, parts=parts)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    shutil.rmtree(out.parent, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    print(json.dumps({"claims": summary.claims, "items": summary.items, "seconds": elapsed, "cpu_seconds": cpu,
                      "claims_per_s": summary.claims / elapsed, "peak_rss_bytes": peak, "bytes_written": size}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also run 10M claims")
    parser.add_argument("--claims", type=int, action="append", help="claims to generate (repeatable)")
    parser.add_argument("--scenario", default=str(REPO / "synthetic" / "default.yaml"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--parts", type=int, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.claims or ([1_000_000, 10_000_000] if args.full else [1_000_000])
    if args.child:
        _child(args.scenario, sizes[0], args.seed, args.parts)
        return
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} cores (wall-clock figures suffer when the machine is shared)")
    print(f"{'claims':>12} {'items':>12} {'seconds':>8} {'claims/s':>10} {'CPU s':>7} {'claims/CPU-s':>13} {'peak RSS':>9} {'written':>9}")
    for n in sizes:
        cmd = [sys.executable, __file__, "--child", "--claims", str(n), "--scenario", args.scenario, "--seed", str(args.seed)]
        if args.parts:
            cmd += ["--parts", str(args.parts)]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        print(f"{res['claims']:>12,} {res['items']:>12,} {res['seconds']:>8.1f} {res['claims_per_s']:>10,.0f} "
              f"{res['cpu_seconds']:>7.1f} {res['claims'] / res['cpu_seconds']:>13,.0f} "
              f"{res['peak_rss_bytes'] / 2**30:>7.2f} GB {res['bytes_written'] / 2**20:>6.0f} MB", flush=True)


if __name__ == "__main__":
    main()

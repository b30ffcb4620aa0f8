"""``fraudkit score`` stage by stage, for two checkouts side by side (wall s, CPU s, peak RSS, output hashes).

    .venv/bin/python benchmarks/score_stages.py BATCH --code /work/main /work/wt-perf --rounds 2

Each round runs every checkout's code in a fresh process (``PYTHONPATH`` = the checkout), the
checkouts alternating, all with the same model (``--model``, default the first checkout's
``models/default``). A process does what ``fraudkit score --no-report`` does (load the model,
validate, adapt, score, write) and times:

- the top-level stages (exclusive): model, validate, adapt, then the stages ``FraudModel.score``
  announces through its ``progress`` callback (features, isolation forests, graph, prioritise)
  and write;
- named functions inside them (cumulative, indented): the claims network, each graph detector's
  fit, ``combine_scores``, ``rollup``, the claim reasons, the provider reasons.

CPU seconds are the process's (all threads). Each checkout's best is shown per stage: the least
wall, CPU and peak over the rounds, each on its own (the other jobs of a shared machine disturb one
stage of one round). Each written file is hashed (summary.json without the batch path): "same
files" says whether every checkout, in every round, wrote the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

OUTPUTS = ("providers.csv", "claims.parquet", "patients.parquet", "summary.json")


class _Peak:
    def __init__(self):
        import psutil

        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(0.02)

    def reset(self) -> int:
        self.peak = self.proc.memory_info().rss
        return self.peak


def child(batch: str, model_dir: str, out: str) -> None:
    import fraudkit
    import fraudkit.pipeline as pl
    from fraudkit.io import atomic_dir, load_batch

    rss = _Peak()
    rows, subs = [], {}
    state = {"name": None, "t": 0.0, "c": 0.0}

    def close():
        if state["name"] is not None:
            rows.append({"stage": state["name"], "seconds": time.perf_counter() - state["t"],
                         "cpu": time.process_time() - state["c"], "peak_rss": rss.peak})
            state["name"] = None

    def step(name: str) -> None:
        close()
        rss.reset()
        state.update(name=name, t=time.perf_counter(), c=time.process_time())

    def timed(label, fn):
        def wrapper(*a, **k):
            t, c = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **k)
            finally:
                s = subs.setdefault(label, {"seconds": 0.0, "cpu": 0.0, "parent": state["name"]})
                s["seconds"] += time.perf_counter() - t
                s["cpu"] += time.process_time() - c
        return wrapper

    pl.ClaimsNetwork.from_batch = staticmethod(timed("claims network (ClaimsNetwork.from_batch)", pl.ClaimsNetwork.from_batch))
    for name, cls in pl.GRAPH_DETECTORS.items():
        cls.fit = timed(f"{name}: fit", cls.fit)
    pl.combine_scores = timed("combine_scores", pl.combine_scores)
    # the claim roll-ups: ``rollup`` itself, or the pipeline's column-at-a-time ``_rollup`` where it has one
    pl.rollup = timed("rollup (claims to providers, patients)", pl.rollup)
    if hasattr(pl, "_rollup"):
        pl._rollup = timed("rollup (claims to providers, patients)", pl._rollup)
    pl.FraudModel._provider_reasons = timed("_provider_reasons", pl.FraudModel._provider_reasons)
    claim_explain = pl.IsolationForestDetector.explain
    pl.IsolationForestDetector.explain = timed("IsolationForestDetector.explain", claim_explain)

    started, cpu0 = time.perf_counter(), time.process_time()
    step("model (load_model)")
    model = pl.load_model(model_dir)
    step("validate (load_batch)")
    batch = load_batch(batch)
    step("adapt (known_share)")
    model, _ = model.adapted(batch, "never")  # the model as given: a large batch would otherwise be refitted
    result = model.score(batch, inspections=20, progress=step)
    step("write (ScoreResult.write)")
    with atomic_dir(out) as tmp:
        result.write(tmp)
    close()
    rows.append({"stage": "total", "seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu0,
                 "peak_rss": max(r["peak_rss"] for r in rows)})
    hashes = {}
    for n in OUTPUTS:
        data = (Path(out) / n).read_bytes()
        if n == "summary.json":
            summary = json.loads(data)
            summary.pop("batch", None)
            data = json.dumps(summary, sort_keys=True).encode()
        hashes[n] = hashlib.sha256(data).hexdigest()[:16]
    print(json.dumps({"code": fraudkit.__file__, "rows": rows, "subs": subs, "hashes": hashes}), flush=True)


def _best(rounds: list[dict]) -> dict:
    """Per stage and sub-stage, the least wall, CPU and peak RSS over the rounds (hashes of the first)."""
    def least(items):
        return {k: min(x[k] for x in items) if k in ("seconds", "cpu", "peak_rss") else items[0][k] for k in items[0]}
    rows = [least([next(x for x in r["rows"] if x["stage"] == row["stage"]) for r in rounds]) for row in rounds[0]["rows"]]
    subs = {label: least([r["subs"][label] for r in rounds if label in r["subs"]]) for label in rounds[0]["subs"]}
    return {"rows": rows, "subs": subs, "hashes": rounds[0]["hashes"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("batch")
    ap.add_argument("--code", nargs="+", required=True, help="checkouts to compare (first = before)")
    ap.add_argument("--model", help="model folder (default: the first checkout's models/default)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="/tmp/score_stages", help="output folders are OUT-0, OUT-1, ...")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    model = args.model or str(Path(args.code[0]) / "models" / "default")
    runs: dict[int, list[dict]] = {i: [] for i in range(len(args.code))}
    for r in range(args.rounds):
        for i, root in enumerate(args.code):
            env = {**os.environ, "PYTHONPATH": str(Path(root).resolve())}
            print(f"round {r + 1}: {root} ...", file=sys.stderr, flush=True)
            proc = subprocess.run([sys.executable, __file__, args.batch, "--code", root, "--child", args.batch, model,
                                   f"{args.out}-{i}"], env=env, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(proc.stderr[-3000:])
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            assert res["code"].startswith(str(Path(root).resolve())), res["code"]
            runs[i].append(res)
    best = {i: _best(v) for i, v in runs.items()}
    names = [Path(c).name for c in args.code]
    head = "| stage | " + " | ".join(f"{n} s (cpu s) | {n} peak GB" for n in names) + " |"
    print(f"\n{args.batch}, least of {args.rounds} rounds per stage; load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print(head)
    print("|---|" + "---:|---:|" * len(names))
    for j, row in enumerate(best[0]["rows"]):
        cells = []
        for i in best:
            rr = next((x for x in best[i]["rows"] if x["stage"] == row["stage"]), None)
            cells.append(f"{rr['seconds']:.2f} ({rr['cpu']:.2f}) | {rr['peak_rss'] / 1e9:.2f}" if rr else "- | -")
        print(f"| {row['stage']} | " + " | ".join(cells) + " |")
        for label, s in best[0]["subs"].items():
            if s["parent"] == row["stage"]:
                cells = []
                for i in best:
                    ss = best[i]["subs"].get(label)
                    cells.append(f"{ss['seconds']:.2f} ({ss['cpu']:.2f}) | " if ss else "- | ")
                print(f"| &nbsp;&nbsp;{label} | " + " | ".join(cells) + " |")
    same = all(best[i]["hashes"] == best[0]["hashes"] for i in best) and all(
        r["hashes"] == best[0]["hashes"] for v in runs.values() for r in v)
    print(f"\nsame files ({', '.join(OUTPUTS)}; summary.json without 'batch'): {'yes' if same else 'NO'}")
    for i in best:
        print(f"  {names[i]}: {best[i]['hashes']}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

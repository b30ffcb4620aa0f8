"""``fraudkit score`` end to end: outputs, quality on planted fraud, determinism, atomicity, model safety."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from fraudkit.pipeline import FraudModel, ModelConfig, load_model, save_model

FRAUDKIT = [sys.executable, "-m", "fraudkit"]


@pytest.fixture(scope="module")
def tiny_model(tiny_batch, tmp_path_factory) -> Path:
    batch, _ = tiny_batch
    folder = tmp_path_factory.mktemp("model") / "tiny-model"
    save_model(FraudModel(ModelConfig(seed=3)).fit(batch), folder)
    return folder


def _run(args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(FRAUDKIT + [str(a) for a in args], capture_output=True, text=True, timeout=300, **kw)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def scored(tiny_batch_dir, tiny_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scored") / "out"
    done = _run(["score", tiny_batch_dir, "--model", tiny_model, "--out", out, "-k", "10", "--quiet", "--no-report"])
    assert done.returncode == 0, done.stderr
    return out


def test_score_writes_ranked_providers_scored_claims_and_summary(scored, tiny_batch):
    batch, labels = tiny_batch
    assert sorted(p.name for p in scored.iterdir()) == ["claims.parquet", "patients.parquet", "providers.csv", "summary.json"]
    providers = pd.read_csv(scored / "providers.csv", dtype={"provider_id": str, "region": str})
    claims = pd.read_parquet(scored / "claims.parquet")
    summary = json.loads((scored / "summary.json").read_text())
    assert providers["rank"].tolist() == list(range(1, len(batch.providers) + 1))
    assert set(providers["provider_id"]) == set(batch.providers["provider_id"])
    assert providers["inspect"].sum() == 10 == summary["inspections"]
    assert len(claims) == len(batch.claims) and claims["claim_id"].is_unique
    assert claims["suspicion"].between(0, 1).all()
    assert claims["flagged"].sum() == summary["flagged_claims"]
    # money at stake only comes from flagged claims, and never exceeds what the provider was paid
    assert (providers["money_at_stake"] <= providers["fund_paid"] + 0.01).all()
    top = providers.head(10)
    assert (top["reasons"].fillna("") != "").all(), "every provider to inspect comes with reasons"


def test_score_finds_planted_fraud_on_tiny(scored, tiny_batch):
    _, labels = tiny_batch
    providers = pd.read_csv(scored / "providers.csv", dtype={"provider_id": str})
    fraudulent = set(labels.providers.loc[labels.providers["fraud_type"] != "", "provider_id"])
    k = len(fraudulent)
    precision = providers.head(k)["provider_id"].isin(fraudulent).mean()
    chance = k / len(providers)
    assert precision >= max(0.5, 2 * chance), f"precision@{k} = {precision:.2f} (chance {chance:.2f})"


def test_same_batch_model_and_seed_give_identical_files(scored, tiny_batch_dir, tiny_model, tmp_path):
    again = tmp_path / "again"
    done = _run(["score", tiny_batch_dir, "--model", tiny_model, "--out", again, "-k", "10", "--quiet", "--no-report"])
    assert done.returncode == 0, done.stderr
    for name in ("providers.csv", "claims.parquet", "patients.parquet", "summary.json"):
        assert _sha(again / name) == _sha(scored / name), name


def test_a_run_killed_midway_leaves_no_partial_output(tiny_batch_dir, tiny_model, scored, tmp_path):
    out = tmp_path / "killed"
    rng = random.Random(7)
    for attempt in range(3):
        proc = subprocess.Popen(FRAUDKIT + ["score", str(tiny_batch_dir), "--model", str(tiny_model), "--out", str(out),
                                            "-k", "10", "--quiet", "--no-report"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.5, 6.0))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        # Either nothing, or (if it finished before the kill) the complete output: never a part of it.
        if out.exists():
            assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in scored.iterdir())
        assert not any(p.name.startswith(".") and "killed" in p.name and p.is_file() for p in tmp_path.iterdir())
    done = _run(["score", tiny_batch_dir, "--model", tiny_model, "--out", out, "-k", "10", "--quiet", "--no-report"])
    assert done.returncode == 0, done.stderr
    assert _sha(out / "providers.csv") == _sha(scored / "providers.csv")
    assert _sha(out / "claims.parquet") == _sha(scored / "claims.parquet")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".killed.tmp")]
    assert leftovers == [], "the rerun clears what killed runs left behind"


def test_a_tampered_model_is_refused_before_unpickling(tiny_model, tiny_batch_dir, tmp_path):
    bad = tmp_path / "bad-model"
    shutil.copytree(tiny_model, bad)
    with open(bad / "model.joblib", "ab") as fh:
        fh.write(b"\0")
    done = _run(["score", tiny_batch_dir, "--model", bad, "--out", tmp_path / "out", "--quiet"])
    assert done.returncode == 2
    assert "does not match its manifest" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
    (bad / "manifest.json").unlink()
    done = _run(["score", tiny_batch_dir, "--model", bad, "--out", tmp_path / "out", "--quiet"])
    assert done.returncode == 2 and "unknown origin" in done.stderr
    from fraudkit.errors import ModelError

    with pytest.raises(ModelError):
        load_model(bad)


def test_reject_mode_scores_valid_rows_and_accounts_for_every_claim(tiny_batch_dir, tiny_model, tmp_path):
    batch = tmp_path / "messy"
    shutil.copytree(tiny_batch_dir, batch)
    claims = pd.read_parquet(batch / "claims.parquet")
    read = len(claims)
    claims.loc[[3, 50, 51], "fund_paid"] = claims.loc[[3, 50, 51], "total_amount"] + 1  # fund_paid > eligible
    claims.to_parquet(batch / "claims.parquet", index=False)
    refused = _run(["score", batch, "--model", tiny_model, "--out", tmp_path / "refused", "--quiet"])
    assert refused.returncode == 2 and "fund_paid" in refused.stderr and not (tmp_path / "refused").exists()
    out = tmp_path / "out"
    done = _run(["score", batch, "--model", tiny_model, "--out", out, "--quiet", "--no-report", "--on-bad-rows", "reject"])
    assert done.returncode == 0, done.stderr
    scored = pd.read_parquet(out / "claims.parquet")
    rejects = pd.read_parquet(out / "rejects.parquet")
    rejected_claims = rejects[rejects["table"] == "claims"]
    assert len(scored) + len(rejected_claims) == read
    assert set(rejected_claims["id"]) == set(claims.loc[[3, 50, 51], "claim_id"])


def test_bad_options_exit_2_without_output(tiny_batch_dir, tiny_model, tmp_path):
    done = _run(["score", tiny_batch_dir, "--model", tiny_model, "--out", tmp_path / "o", "--provider-type", "spa"])
    assert done.returncode == 2 and not (tmp_path / "o").exists()
    done = _run(["score", tmp_path / "nope", "--model", tiny_model, "--out", tmp_path / "o"])
    assert done.returncode == 2 and "does not exist" in done.stderr and not (tmp_path / "o").exists()


def test_schemes_come_only_from_evidence_that_accuses(scored):
    """A provider is tagged collusion_ring only when a graph detector's score clears its fence."""
    from fraudkit.pipeline import ModelConfig
    from fraudkit.prioritise import fence

    providers = pd.read_csv(scored / "providers.csv", dtype={"provider_id": str})
    fences = ModelConfig().fences
    graph = [c for c in ("dense_blocks", "rings") if f"score_{c}" in providers]
    above = pd.Series(False, index=providers.index)
    for c in graph:
        col = providers[f"score_{c}"]
        above |= col > fence(col.dropna(), fences[c])
    tagged = providers["schemes"].fillna("").str.contains("collusion_ring")
    assert tagged.any(), "the tiny batch has rings; some provider should be tagged"
    assert not (tagged & ~above).any(), providers.loc[tagged & ~above, ["provider_id", "schemes"]]


def test_a_batch_from_another_catalogue_is_scored_against_itself(tiny_batch_dir, tiny_model, scored, tmp_path):
    """Item codes the model never saw (another insurer's catalogue): auto refits on the batch and still finds fraud."""
    batch = tmp_path / "foreign"
    shutil.copytree(tiny_batch_dir, batch)
    items = pd.read_parquet(batch / "items.parquet")
    codes = {c: f"ZX-{i:05d}" for i, c in enumerate(sorted(items["item_code"].unique()))}
    items["item_code"] = items["item_code"].map(codes)
    items.to_parquet(batch / "items.parquet", index=False)
    runs = {}
    for policy in ("auto", "never"):
        out = tmp_path / policy
        done = _run(["score", batch, "--model", tiny_model, "--out", out, "-k", "10", "--quiet", "--no-report",
                     "--refit", policy])
        assert done.returncode == 0, done.stderr
        runs[policy] = (json.loads((out / "summary.json").read_text()), done.stdout + done.stderr)
    assert runs["auto"][0]["refit_on_batch"] is True and "learnt from this batch itself" in runs["auto"][1]
    assert runs["never"][0]["refit_on_batch"] is False
    # the known catalogue is not refitted
    assert json.loads((scored / "summary.json").read_text()).get("refit_on_batch") in (False, None)
    providers = pd.read_csv(tmp_path / "auto" / "providers.csv", dtype={"provider_id": str})
    labels = pd.read_parquet(batch / "labels" / "providers.parquet")
    fraudulent = set(labels.loc[labels["fraud_type"].fillna("") != "", "provider_id"])
    k = len(fraudulent)
    assert providers.head(k)["provider_id"].isin(fraudulent).mean() >= max(0.5, 2 * k / len(providers))


def test_a_batch_too_big_for_free_memory_is_warned_about_before_any_work(tiny_batch_dir, tiny_model, run_cli,
                                                                        monkeypatch, tmp_path):
    import psutil

    from fraudkit.io import count_rows

    claims = count_rows(tiny_batch_dir, "claims")
    assert claims == len(pd.read_parquet(tiny_batch_dir / "claims.parquet"))  # from the footers alone
    free = psutil.virtual_memory()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: free._replace(available=10_000_000))  # 10 MB free
    code, out, _ = run_cli(["score", str(tiny_batch_dir), "--model", str(tiny_model), "--out", str(tmp_path / "a"),
                            "--no-report", "--quiet"])
    assert code == 0 and (tmp_path / "a" / "providers.csv").is_file()  # a warning, not a refusal
    said = " ".join(out.split())
    assert f"scoring {claims:,} claims takes about" in said and "score the batch in parts" in said
    assert said.index("scoring") < said.index("Ranked providers")  # before the work, not after
    monkeypatch.setattr(psutil, "virtual_memory", lambda: free._replace(available=10**12))
    code, out, _ = run_cli(["score", str(tiny_batch_dir), "--model", str(tiny_model), "--out", str(tmp_path / "b"),
                            "--no-report", "--quiet"])
    assert code == 0 and "GB of memory" not in out

"""The HTML inspection report: content, pseudonymisation, escaping, and rendering in headless Chromium."""

from __future__ import annotations

import html
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

import fraudkit.report._page as page
from fraudkit.io import Batch
from fraudkit.prioritise import combine_scores, rank_providers
from fraudkit.report import Pseudonymiser, write_report

from fraudkit.pipeline import ScoreResult

K = 5
EVIL_ID = 'C9<b>"&amp;'  # a provider id that must come out escaped
EVIL_REASON = "<img src=x onerror=alert(1)> billed 3× its peers"
RING_PATIENTS = [f"PAT{i:05d}" for i in range(1, 21)]
RING_DOCTOR = "D10"  # a doctor of clinic C1


def make_batch_and_result(seed: int = 7, peer_medians: bool = True):
    """A small scored batch: 12 providers, 300 patients, ~1,500 claims and a clinic–pharmacy ring."""
    rng = np.random.default_rng(seed)
    providers = pd.DataFrame({
        "provider_id": ["H1", "H2", "H3", "C1", "C2", "C3", "C4", EVIL_ID, "R1", "R2", "R3", "R4"],
        "provider_type": ["hospital"] * 3 + ["clinic"] * 5 + ["pharmacy"] * 4,
        "tier": [3, 2, 2, 1, 1, 1, 1, 1, 0, 0, 0, 0],
        "region": ["east", "west"] * 6,
        "beds": [800, 300, 250, 20, 10, 10, 15, 5, 0, 0, 0, 0],
    })
    patients = pd.DataFrame({"patient_id": [f"PAT{i:05d}" for i in range(1, 301)],
                             "birth_year": rng.integers(1940, 2010, 300), "sex": rng.choice(["M", "F"], 300),
                             "scheme": rng.choice(["EBMI", "RBMI"], 300), "retired": rng.random(300) < 0.25,
                             "region": rng.choice(["east", "west"], 300)})
    care = {"hospital": ["inpatient", "outpatient"], "clinic": ["outpatient", "chronic"], "pharmacy": ["pharmacy"]}
    base = {"inpatient": 9000.0, "outpatient": 300.0, "chronic": 500.0, "pharmacy": 150.0}
    rows = []
    for i in range(1400):
        prov = providers.iloc[rng.integers(len(providers))]
        kind = rng.choice(care[prov.provider_type])
        rows.append((prov.provider_id, f"PAT{rng.integers(21, 301):05d}", kind, False))
    for i in range(120):  # the ring: 20 patients, clinic C1, pharmacy R1, doctor D01
        rows.append(("C1" if i % 2 else "R1", RING_PATIENTS[i % 20], "outpatient" if i % 2 else "pharmacy", True))
    claims = pd.DataFrame(rows, columns=["provider_id", "patient_id", "care_type", "ring"])
    n = len(claims)
    claims.insert(0, "claim_id", [f"CLM{i:06d}" for i in range(n)])
    # each institution has three doctors; pharmacy sales carry no doctor, except the ring's
    # prescriptions, all written by one doctor of clinic C1
    position = claims["provider_id"].map({p: i for i, p in enumerate(providers["provider_id"])})
    claims["doctor_id"] = [f"D{3 * i + j + 1:02d}" for i, j in zip(position, rng.integers(0, 3, n))]
    claims.loc[claims["provider_id"].str.startswith("R"), "doctor_id"] = None
    claims.loc[claims["ring"], "doctor_id"] = RING_DOCTOR
    claims["admit_date"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 180, n), unit="D")
    stay = np.where(claims["care_type"] == "inpatient", rng.integers(2, 15, n), 0)
    claims["discharge_date"] = claims["admit_date"] + pd.to_timedelta(stay, unit="D")
    claims["diagnosis"] = rng.choice(["J18.9", "I10", "E11.9", "K29.7", "M54.5"], n)
    median = claims["care_type"].map(base) * rng.choice([0.8, 1.0, 1.3], n)
    claims["total_amount"] = (median * rng.lognormal(0, 0.35, n) * np.where(claims["ring"], 2.6, 1.0)).round(2)
    claims.loc[claims["provider_id"] == "H2", "total_amount"] *= 1.8  # an upcoding hospital
    claims["eligible_amount"] = (claims["total_amount"] * 0.9).round(2)
    claims["fund_paid"] = (claims["eligible_amount"] * 0.7).round(2)
    claims["self_paid"] = (claims["total_amount"] - claims["fund_paid"]).round(2)
    batch = Batch(patients=patients, providers=providers, claims=claims.drop(columns="ring"),
                  items=pd.DataFrame(columns=["claim_id", "line_no"]), source="batches/test-2026H1")

    scored = claims.drop(columns=["ring", "eligible_amount", "self_paid"]).copy()
    if peer_medians:
        scored["peer_median_total"] = median.round(2)
    ratio = claims["total_amount"] / median
    scored["suspicion"] = (1 - np.exp(-ratio)).clip(0, 1).round(4)
    scored["flagged"] = scored["suspicion"].rank(ascending=False, method="first") <= 0.06 * n
    scored["reasons"] = np.where(scored["flagged"], "total 2.6 × the peer median of its group | 14 claims by this patient in 30 days", "")
    scored.loc[scored["claim_id"] == "CLM001401", "reasons"] = EVIL_REASON
    scored.loc[scored["claim_id"] == "CLM001401", "flagged"] = True

    evidence = pd.Series({"C1": 9.0, "R1": 8.5, "H2": 7.0, EVIL_ID: 6.0, "C2": 3.0, "H1": 1.5, "R2": 1.0}).reindex(providers["provider_id"]).fillna(0.1)
    provider_scores = combine_scores(pd.DataFrame({"graph": evidence}))
    reasons = pd.DataFrame([
        ("C1", "dense_blocks", 1, "block_density", 4.2, 1.0, "In a dense block with 20 patients, 1 pharmacy and 1 doctor: 6.1× the expected shared visits", 9.0),
        ("C1", "rings", 1, "shared_patients", 20, 1.0, f"Shares patients {RING_PATIENTS[2]} and {RING_PATIENTS[6]} with pharmacy R1", 8.0),
        ("C1", "claim_outliers", 1, "flagged_claims", 60, 1.0, "60 flagged claims, the most suspicious: total 2.6 × the peer median", 6.0),
        ("R1", "dense_blocks", 1, "block_density", 4.2, 1.0, "In a dense block with clinic C1: 20 patients buy here after every visit", 8.5),
        ("H2", "provider_features", 1, "cost_ratio", 1.8, 0.7, "Claims cost 1.8× the peer median of their DRG group and tier", 7.0),
        (EVIL_ID, "provider_features", 1, "price", 3.0, 0.9, EVIL_REASON, 6.0),
    ], columns=["id", "detector", "rank", "feature", "value", "contribution", "reason", "strength"])
    schemes = pd.Series({"C1": "collusion_ring", "R1": "collusion_ring;drug_reselling", "H2": "upcoding", EVIL_ID: "drug_swapping"})
    ranked = rank_providers(provider_scores, scored, providers, reasons, schemes)
    ranked["inspect"] = ranked["rank"] <= K
    blocks = [{"block": 1, "density": 4.2, "density_ratio": 14.0, "patients": RING_PATIENTS, "providers": ["C1", "R1"],
               "doctors": [RING_DOCTOR], "n_patients": 20, "n_providers": 2, "n_doctors": 1, "claims": 120, "money": 98765.0}]
    summary = {"fraudkit_version": "0.1.0", "batch": batch.source, "claims": n, "patients": len(patients),
               "providers": len(providers), "inspections": K, "flagged_claims": int(scored["flagged"].sum()),
               "fund_paid_total": float(scored["fund_paid"].sum()), "region": None, "provider_type": None}
    patients_scored = pd.DataFrame({"patient_id": patients["patient_id"], "suspicion": 0.5})
    return batch, ScoreResult(ranked, scored, patients_scored, reasons, blocks, summary)


@pytest.fixture
def validated(monkeypatch):
    """Check every figure against plotly's schema (the report skips this for speed)."""
    import fraudkit.report._figures as figures

    monkeypatch.setattr(figures, "VALIDATE_FIGURES", True)


def test_report_lists_the_top_k_with_cards_and_escapes_text(tmp_path, validated):
    batch, result = make_batch_and_result()
    out = write_report(result, batch, tmp_path / "report.html", salt="s")
    text = out.read_text(encoding="utf-8")
    top = result.providers.head(K)
    for pid, rank in zip(top["provider_id"], top["rank"]):
        assert html.escape(pid) in text
        assert f'id="card-{rank}"' in text and f'href="#card-{rank}"' in text
    assert EVIL_ID in set(top["provider_id"])  # so the escaping below is exercised in a card
    assert EVIL_ID not in text and "<b>\"&amp;" not in text
    assert "<img src=x" not in text and html.escape(EVIL_REASON) in text
    # the next few are listed greyed, without cards
    reserve = result.providers.iloc[K:K + page.RESERVE_ROWS]
    assert text.count('<tr class="reserve') == len(reserve)
    assert 'id="card-6"' not in text
    assert "-0.000" not in text  # suspicions that round to zero from below
    # header: budget and money at stake in the top k
    assert f"¥{top['money_at_stake'].sum():,.0f}" in text
    # plotly.js embedded exactly once, nothing loaded from outside
    assert text.count("plotly.js v") == 1
    ours = text.replace(get_plotlyjs(), "")  # plotly.js itself holds a link to plotly.com, never followed
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", ours) and "@import" not in ours
    assert text.count('data-figure="card-') == 2 * K
    assert out.stat().st_size < 7_000_000


def test_no_raw_patient_id_anywhere(tmp_path):
    batch, result = make_batch_and_result()
    text = write_report(result, batch, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "PAT0" not in text  # every patient id starts so; reasons quote two of them
    assert not _tokens_outside_plotlyjs(text) & set(batch.patients["patient_id"])
    pseudonyms = set(re.findall(r"P-[0-9a-f]{8}", text))
    assert len(pseudonyms) > 20  # the network plot and the evidence tables show patients


def test_pseudonyms_are_salted_and_the_report_is_reproducible_with_a_salt(tmp_path):
    batch, result = make_batch_and_result()
    a, b, c = (write_report(result, batch, tmp_path / f"{name}.html", salt=salt, max_cards=1).read_text(encoding="utf-8")
               for name, salt in (("a", "one"), ("b", "one"), ("c", "two")))
    assert a == b != c
    ring_patient = Pseudonymiser("one")(RING_PATIENTS[2])
    assert ring_patient in a and ring_patient not in c


def test_without_peer_medians_costs_are_drawn_as_boxes_and_max_cards_limits_cards(tmp_path, validated):
    batch, result = make_batch_and_result(peer_medians=False)
    text = write_report(result, batch, tmp_path / "r.html", max_cards=2, salt="s").read_text(encoding="utf-8")
    assert '"type":"box"' in text and "No peer medians" in text
    assert 'id="card-2"' in text and 'id="card-3"' not in text
    assert "Cards are included for the top 2 only" in text


def test_a_provider_without_claims_or_reasons_and_a_budget_beyond_the_providers(tmp_path):
    batch, result = make_batch_and_result(peer_medians=False)
    batch.providers.loc[len(batch.providers)] = ["Z1", "clinic", 1, "east", 3]
    idle = result.providers.iloc[[0]].assign(provider_id="Z1", claims=0, flagged_claims=0, evidence_claims="",
                                              reasons=np.nan, schemes="", money_at_stake=0.0)
    result.providers = pd.concat([idle, result.providers], ignore_index=True).assign(inspect=True)
    result.providers["rank"] = np.arange(1, len(result.providers) + 1)
    result.reasons, result.blocks = result.reasons.iloc[:0], []
    result.summary["inspections"] = 50  # more than there are providers
    text = write_report(result, batch, tmp_path / "r.html", salt="s", max_cards=2).read_text(encoding="utf-8")
    assert text.count('<article class="card"') == 2 and text.count("<tr>") >= len(result.providers)
    assert "No claims of this provider in the batch." in text and "No flagged claims." in text
    assert 'class="reserve' not in text


def _tokens_outside_plotlyjs(text: str) -> set[str]:
    return set(re.findall(r"[\w\-]+", text.replace(get_plotlyjs(), "")))


def test_report_of_a_scored_synthetic_batch(tmp_path, tiny_batch):
    """End to end on the pipeline's real output: the tiny synthetic batch, fitted with small forests."""
    from fraudkit.pipeline import FraudModel, ModelConfig

    batch, _ = tiny_batch
    small = {"n_estimators": 40, "max_samples": 256}
    model = FraudModel(ModelConfig(claim_forest=small, patient_forest=small, provider_forest=small)).fit(batch)
    result = model.score(batch, inspections=6)
    text = write_report(result, batch, tmp_path / "report.html", max_cards=3).read_text(encoding="utf-8")
    tokens = _tokens_outside_plotlyjs(text)
    assert not tokens & set(batch.patients["patient_id"].astype(str))  # not one of 6,789 patient ids
    assert set(result.top()["provider_id"].astype(str)) <= tokens
    assert text.count('<article class="card"') == 3 and text.count('<tr class="reserve') == page.RESERVE_ROWS
    evidence = [c for c in result.top(3)["evidence_claims"].str.cat(sep=";").split(";") if c]
    assert evidence and set(evidence) <= tokens


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (make test installs Debian's chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    from playwright.sync_api import sync_playwright  # in the test extra; drives the system chromium, downloads nothing

    batch, result = make_batch_and_result()
    report = write_report(result, batch, tmp_path / "report.html", salt="s")
    batch_b, result_b = make_batch_and_result(peer_medians=False)
    boxes = write_report(result_b, batch_b, tmp_path / "boxes.html", max_cards=2)
    problems, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1280, "height": 900})
            pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            pg.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
            pg.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:", "blob:")) else None)
            pg.goto(report.as_uri(), wait_until="load")
            drawn = "document.querySelectorAll('.js-plotly-plot .main-svg').length >= "
            pg.wait_for_function(drawn + "2", timeout=20_000)  # the first card's plots, drawn on opening
            rows = pg.locator("table.ranking tbody tr")
            assert rows.count() == K + page.RESERVE_ROWS
            assert pg.locator("table.ranking tbody tr.reserve").count() == page.RESERVE_ROWS
            first = pg.locator("article.card").first
            assert first.get_attribute("id") == "card-1"
            assert first.locator("ol.reasons li").count() >= 1
            assert first.locator(".plot .scatterlayer .point").count() > 20  # claims and network nodes drawn
            assert first.locator("table.evidence tbody tr").count() >= 1
            assert pg.locator("article.card").count() == K
            assert pg.locator("img[src=x]").count() == 0  # the planted markup stayed text
            # ids are escaped once, not twice: the odd provider id reads as itself in table and plot
            assert pg.locator("table.ranking").inner_text().count(EVIL_ID) == 1
            svg_text = pg.evaluate("Array.from(document.querySelectorAll('.plot text')).map(t => t.textContent).join('\\n')")
            assert EVIL_ID in svg_text and "&quot;" not in svg_text and "PAT0" not in svg_text
            # later cards draw when scrolled near, and all of them before printing
            pg.evaluate("window.dispatchEvent(new Event('beforeprint'))")
            pg.wait_for_function(drawn + str(2 * K), timeout=20_000)
            pg.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            pg.locator("#card-1").screenshot(path=str(tmp_path / "card-1.png"))
            # the other cost plot: boxes per care type when the run has no peer medians
            pg.goto(boxes.as_uri(), wait_until="load")
            pg.wait_for_function(drawn + "4", timeout=20_000)
            assert pg.locator("#card-1-costs .boxlayer .trace").count() >= 3
            pg.locator("#card-1").screenshot(path=str(tmp_path / "card-1-boxes.png"))
        finally:
            browser.close()
    assert problems == []
    assert requests == []
    assert (tmp_path / "report.png").stat().st_size > 50_000

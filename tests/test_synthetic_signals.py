"""Each planted scheme leaves the signal shared/DOMAIN.md describes, and normal care stays calibrated.

All checks compare planted claims (or actors) with legitimate ones in the shared tiny batch,
so that a scheme that stopped leaving its trace, or a normal generator that started to look
like fraud, fails here.
"""

from __future__ import annotations

import pandas as pd
import pytest

from fraudkit.synthetic import Scenario, builtin_scenario, catalogue, generate


@pytest.fixture(scope="module")
def frames(tiny_batch):
    batch, labels = tiny_batch
    claims = batch.claims.copy()
    for col in ("claim_id", "patient_id", "provider_id", "doctor_id", "diagnosis"):
        claims[col] = claims[col].astype(object)
    claims["care_type"] = claims["care_type"].astype(str)
    claims = claims.merge(labels.claims.astype({"claim_id": object}), on="claim_id")
    prov = batch.providers.astype({"provider_id": object, "region": object})
    prov["provider_type"] = prov["provider_type"].astype(str)
    claims = claims.merge(prov.rename(columns={"region": "provider_region"}), on="provider_id")
    pats = batch.patients.astype({"patient_id": object, "region": object})
    claims = claims.merge(pats[["patient_id", "region", "sex", "birth_year", "scheme"]].assign(scheme=lambda d: d.scheme.astype(str)),
                          on="patient_id")
    items = batch.items.astype({"claim_id": object, "item_code": object})
    items["item_kind"] = items["item_kind"].astype(str)
    plabels = labels.providers.astype(object)
    patlabels = labels.patients.astype(object)
    return claims, items, plabels, patlabels


def has(series: pd.Series, scheme: str) -> pd.Series:
    return series.fillna("").str.split(";").apply(lambda parts: scheme in parts)


def stays(claims):
    s = claims[claims.care_type == "inpatient"].copy()
    s["los"] = (s.discharge_date - s.admit_date).dt.days
    return s


# --------------------------------------------------------------------------- labels
def test_labels_name_actors_that_did_it(frames):
    claims, _, plabels, patlabels = frames
    for _, row in plabels[plabels.fraud_type != ""].iterrows():
        mine = claims[claims.provider_id == row.provider_id]
        for scheme in row.fraud_type.split(";"):
            assert has(mine.fraud_type, scheme).any(), (row.provider_id, scheme)
    for _, row in patlabels[patlabels.fraud_type != ""].iterrows():
        mine = claims[claims.patient_id == row.patient_id]
        for scheme in row.fraud_type.split(";"):
            assert has(mine.fraud_type, scheme).any(), (row.patient_id, scheme)


def test_camouflage_fraudulent_providers_do_normal_business(frames):
    claims, _, plabels, _ = frames
    bad = plabels[plabels.fraud_type != ""].provider_id
    share = claims[claims.provider_id.isin(bad)].groupby("provider_id").fraud_type.apply(lambda s: (s != "").mean())
    assert share.median() < 0.6
    assert (share < 1).all()


# --------------------------------------------------------------------------- schemes
def test_decomposed_stays_readmit_within_15_days_same_diagnosis(frames):
    claims = frames[0]
    s = stays(claims).sort_values(["patient_id", "provider_id", "admit_date"])
    prev_discharge = s.groupby(["patient_id", "provider_id", "diagnosis"]).discharge_date.shift()
    gap = (s.admit_date - prev_discharge).dt.days
    nxt_admit = s.groupby(["patient_id", "provider_id", "diagnosis"]).admit_date.shift(-1)
    gap_next = (nxt_admit - s.discharge_date).dt.days
    readmit = ((gap >= 0) & (gap <= 15)) | ((gap_next >= 0) & (gap_next <= 15))
    planted = has(s.fraud_type, "decomposed_stay")
    assert planted.sum() >= 6
    assert readmit[planted].mean() >= 0.9
    assert readmit[~planted & (s.fraud_type == "")].mean() < 0.05


def test_bed_hanging_stays_have_days_without_daily_items(frames):
    claims, items = frames[0], frames[1]
    s = stays(claims)
    lines = items[items.claim_id.isin(s.claim_id)]
    daily = lines[lines.item_kind.isin(["drug", "exam"])]
    care_days = daily.groupby("claim_id").service_date.nunique()
    nights = s.set_index("claim_id").los
    empty_days = nights - care_days.reindex(nights.index, fill_value=0)
    planted = has(s.set_index("claim_id").fraud_type, "bed_hanging")
    assert planted.sum() >= 5
    # planted stays: whole days with a bed but no drug or test; legitimate stays: essentially never
    assert (empty_days[planted] >= 1).mean() >= 0.9
    assert (empty_days[~planted & (s.set_index("claim_id").fraud_type == "")] >= 1).mean() < 0.05


def test_phantom_services_repeat_identical_exam_lines_across_patients(frames):
    claims, items, plabels, _ = frames
    actors = plabels[has(plabels.fraud_type, "phantom_services")].provider_id
    assert len(actors) >= 2
    exams = items[items.item_kind == "exam"].merge(claims[["claim_id", "provider_id", "patient_id", "fraud_type"]], on="claim_id")
    for provider in actors:
        mine = exams[(exams.provider_id == provider) & has(exams.fraud_type, "phantom_services")]
        sets = mine.groupby("claim_id").apply(lambda d: tuple(sorted(zip(d.item_code, d.unit_price))), include_groups=False)
        # the template (same codes, same prices) is contained in every planted claim
        common = set.intersection(*(set(x) for x in sets))
        assert len(common) >= 2, provider
        assert mine.patient_id.nunique() >= 3


def test_card_lending_same_day_use_in_another_region(frames):
    claims = frames[0]
    c = claims[["patient_id", "admit_date", "provider_region", "fraud_type", "claim_id"]]
    pairs = c.merge(c, on=["patient_id", "admit_date"], suffixes=("", "_o"))
    pairs = pairs[(pairs.claim_id != pairs.claim_id_o) & (pairs.provider_region != pairs.provider_region_o)]
    flagged = set(pairs.claim_id)
    planted = has(claims.fraud_type, "card_lending")
    in_two_places = claims.claim_id.isin(flagged)
    away = claims.provider_region != claims.region
    assert planted.sum() >= 20
    assert in_two_places[planted & away].mean() >= 0.3
    assert in_two_places[claims.fraud_type == ""].mean() < 0.01
    # borrowed cards are used for visits away from the card owner's home region
    visits = planted & (claims.care_type != "pharmacy")
    assert (claims.provider_region != claims.region)[visits].mean() >= 0.95
    assert (claims.provider_region != claims.region)[claims.fraud_type == ""].mean() < 0.15


def test_drug_reselling_supplies_far_beyond_days_elapsed(frames):
    claims, items, _, patlabels = frames
    cat = catalogue(0).set_index("item_code")
    outside = claims[claims.care_type != "inpatient"]
    drugs = items[items.item_kind == "drug"].merge(outside[["claim_id", "patient_id", "provider_id", "admit_date"]], on="claim_id")
    drugs["supplied"] = drugs.quantity * cat.days_per_pack.reindex(drugs.item_code).to_numpy()
    span = (claims.admit_date.max() - claims.admit_date.min()).days + 1
    per_patient = drugs.groupby(["patient_id", "item_code"]).agg(days=("supplied", "sum"), shops=("provider_id", "nunique")).reset_index()
    top = per_patient.sort_values("days").groupby("patient_id").tail(1).set_index("patient_id")
    sellers = patlabels[has(patlabels.fraud_type, "drug_reselling")].patient_id
    others = patlabels[patlabels.fraud_type == ""].patient_id
    assert len(sellers) >= 5
    ratio = top.days / span
    assert ratio.reindex(sellers).median() >= 2
    assert ratio.reindex(sellers).median() > ratio.reindex(others).dropna().quantile(0.99)
    assert top.shops.reindex(sellers).median() >= 3


def test_collusion_ring_shares_patients_far_above_chance(frames):
    claims, _, plabels, _ = frames
    ring = plabels[has(plabels.fraud_type, "collusion_ring")].provider_id
    # regulars: patients with at least three claims at the provider
    visits = claims.groupby(["patient_id", "provider_id", "provider_type"]).size().rename("n").reset_index()
    c = visits[visits.n >= 3]
    n_pat = claims.patient_id.nunique()
    clinics = [p for p in ring if (c.provider_id == p).any() and c[c.provider_id == p].provider_type.iloc[0] == "clinic"]
    pharmacies = [p for p in ring if p not in clinics]
    assert clinics and pharmacies
    best_lifts = []
    for clinic in clinics:
        a = set(c[c.provider_id == clinic].patient_id)
        lifts = []
        for ph in pharmacies:
            b = set(c[c.provider_id == ph].patient_id)
            expected = len(a) * len(b) / n_pat
            lifts.append(len(a & b) / max(expected, 1e-9))
        best_lifts.append(max(lifts))
    assert min(best_lifts) >= 10
    # ring patients see the same few doctors
    ring_claims = claims[has(claims.fraud_type, "collusion_ring") & (claims.provider_type == "clinic")]
    assert ring_claims.groupby("provider_id").doctor_id.nunique().max() <= 4


def test_over_charging_duplicates_or_prices_above_catalogue(frames):
    claims, items = frames[0], frames[1]
    lines = items.merge(claims[["claim_id", "fraud_type", "tier", "provider_type"]], on="claim_id")
    usual = lines[lines.fraud_type == ""].groupby(["item_code", "tier", "provider_type"]).unit_price.max().rename("usual")
    lines = lines.join(usual, on=["item_code", "tier", "provider_type"])
    lines["above"] = lines.unit_price > lines.usual + 1e-9
    lines["dup"] = lines.duplicated(["claim_id", "item_code", "service_date"], keep=False)
    # a package billed with one of its parts the same day
    panels = {"EXM0039": ("EXM0005", "EXM0006"), "EXM0040": ("EXM0006", "EXM0007", "EXM0008")}
    keys = set(zip(lines.claim_id, lines.service_date, lines.item_code))
    lines["package"] = [code in panels and any((c, d, part) in keys for part in panels[code])
                        for c, d, code in zip(lines.claim_id, lines.service_date, lines.item_code)]
    per_claim = lines.groupby("claim_id").agg(above=("above", "any"), dup=("dup", "any"), package=("package", "any"),
                                              fraud=("fraud_type", "first"))
    planted = has(per_claim.fraud, "over_charging")
    assert planted.sum() >= 10
    assert (per_claim.above | per_claim.dup | per_claim.package)[planted].mean() >= 0.95
    legit = per_claim.fraud == ""
    assert per_claim.dup[legit].mean() == 0 and per_claim.package[legit].mean() == 0


def test_drug_swapping_bills_the_expensive_code(frames):
    claims, items = frames[0], frames[1]
    # drug classes are fixed; prices vary with the seed, so take them from the batch itself
    classes = catalogue(0).set_index("item_code").drug_class
    lines = items[items.item_kind == "drug"].merge(claims[["claim_id", "fraud_type", "care_type", "provider_type"]], on="claim_id")
    price = lines[lines.provider_type != "pharmacy"].groupby("item_code").unit_price.median()
    priced = pd.DataFrame({"price": price, "drug_class": classes.reindex(price.index)})
    top = set(priced.groupby("drug_class").price.idxmax())
    lines = lines[lines.care_type != "inpatient"]
    lines["top"] = lines.item_code.isin(top)
    planted = has(lines.fraud_type, "drug_swapping")
    assert planted.sum() >= 10
    assert lines.top[planted].mean() >= 3 * lines.top[lines.fraud_type == ""].mean()


def test_upcoding_diagnosis_richer_than_its_items(frames):
    claims = frames[0]
    s = stays(claims)
    s = s[(s.fraud_type == "") | (s.fraud_type == "upcoding")]
    typical = s[s.fraud_type == ""].groupby(["diagnosis", "tier"]).total_amount.median().rename("typical")
    up = s[s.fraud_type == "upcoding"].join(typical, on=["diagnosis", "tier"]).dropna(subset=["typical"])
    assert len(up) >= 5
    assert (up.total_amount / up.typical).median() < 0.8


def test_fake_admissions_come_in_groups_with_long_mild_stays(frames):
    claims = frames[0]
    s = stays(claims)
    # stays at the same hospital admitted and discharged within a day of each other
    pairs = s[["claim_id", "provider_id", "admit_date", "discharge_date"]].merge(
        s[["provider_id", "admit_date", "discharge_date"]], on="provider_id", suffixes=("", "_o"))
    close = ((pairs.admit_date - pairs.admit_date_o).dt.days.abs() <= 1) & ((pairs.discharge_date - pairs.discharge_date_o).dt.days.abs() <= 1)
    together = pairs[close].groupby("claim_id").size().reindex(s.claim_id).to_numpy()
    together = pd.Series(together, index=s.index)
    planted = has(s.fraud_type, "fake_admission")
    assert planted.sum() >= 8
    assert (together[planted] >= 3).mean() >= 0.8
    assert (together[s.fraud_type == ""] >= 3).mean() < 0.2
    mild = {"J06.9", "J20.9", "I10", "E11.9", "K29.7", "M54.5", "A09", "N39.0"}
    assert s[planted].diagnosis.isin(mild).all()
    legit_mild = s[(s.fraud_type == "") & s.diagnosis.isin(mild)]
    assert s[planted].los.median() > legit_mild.los.median()


# --------------------------------------------------------------------------- calibration
@pytest.fixture(scope="module")
def default_batch():
    # the default scenario at 60,000 claims over its half year, without the contract check (tested elsewhere)
    return generate(Scenario.from_yaml(builtin_scenario("default")), n_claims=60_000, seed=11, validate=False)


def test_calibration_near_published_figures(default_batch):
    batch, _ = default_batch
    sc = Scenario.from_yaml(builtin_scenario("default"))
    claims = batch.claims.merge(batch.patients, on="patient_id").merge(batch.providers, on="provider_id", suffixes=("", "_prov"))
    years = sc.days / 365.25
    patients = batch.patients
    assert (patients.scheme == "RBMI").mean() == pytest.approx(0.73, abs=0.02)
    assert patients[patients.scheme == "EBMI"].retired.mean() == pytest.approx(0.25, abs=0.02)
    for scheme, rate in (("EBMI", 0.219), ("RBMI", 0.253)):
        n_stays = ((claims.scheme == scheme) & (claims.care_type == "inpatient")).sum()
        per_member_year = n_stays / (patients.scheme == scheme).sum() / years
        assert per_member_year == pytest.approx(rate, rel=0.2), scheme
    stays_ = claims[claims.care_type == "inpatient"]
    targets = {("EBMI", 3): 0.835, ("EBMI", 2): 0.874, ("EBMI", 1): 0.894,
               ("RBMI", 3): 0.632, ("RBMI", 2): 0.724, ("RBMI", 1): 0.808}
    for (scheme, tier), target in targets.items():
        d = stays_[(stays_.scheme == scheme) & (stays_.tier == tier)]
        assert d.fund_paid.sum() / d.eligible_amount.sum() == pytest.approx(target, abs=0.01), (scheme, tier)
    # tertiary stays cost more than primary ones; amounts are heavy-tailed
    by_tier = stays_.groupby("tier").total_amount.mean()
    assert by_tier[3] > 1.5 * by_tier[1]
    out = claims[claims.care_type == "outpatient"].total_amount
    assert out.quantile(0.99) > 4 * out.median()
    # weekends are quieter for visits; members mostly stay in their region
    visits = claims[claims.care_type == "outpatient"]
    weekday = visits.admit_date.dt.weekday
    assert (weekday >= 5).mean() < 2 / 7 * 0.9
    assert (claims.region == claims.region_prov).mean() > 0.85
    # providers in realistic proportions
    kinds = batch.providers.provider_type.value_counts()
    assert kinds["clinic"] > kinds["hospital"] and kinds["pharmacy"] > kinds["hospital"]
    assert (batch.providers[batch.providers.provider_type != "hospital"].beds == 0).all()
    # pharmacy sales over the counter carry no doctor; visits and stays always do
    assert claims[claims.care_type != "pharmacy"].doctor_id.notna().all()
    assert claims[claims.care_type == "pharmacy"].doctor_id.isna().mean() > 0.3


def test_stays_bill_every_day(default_batch):
    batch, labels = default_batch
    legit = set(labels.claims[labels.claims.fraud_type == ""].claim_id)
    s = batch.claims[(batch.claims.care_type == "inpatient") & batch.claims.claim_id.isin(legit)]
    beds = batch.items[(batch.items.item_kind == "bed") & batch.items.claim_id.isin(s.claim_id)]
    nights = (s.discharge_date - s.admit_date).dt.days.to_numpy()
    per_claim = beds.groupby("claim_id").service_date.nunique().reindex(s.claim_id).fillna(0).to_numpy()
    assert (per_claim == nights).all()

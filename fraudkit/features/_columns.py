"""What each feature column means, which direction is suspicious, and how to say it to an inspector.

One place for the documentation of the three feature tables, used by the
docstrings, by detectors (which direction of a feature is suspicious) and by
``explain`` (the sentence an inspector reads).
"""

from __future__ import annotations

import math

#: Claim feature table (index ``claim_id``). Peer group = ICD-10 3-character
#: category (``J18``) × provider tier × care type, falling back to category × care
#: type, then tier × care type, then care type when a group had fewer than
#: ``min_peers`` claims at fit time.
CLAIM_COLUMNS: dict[str, str] = {
    "peer_level": "peer group used: 0 = category×tier×care, 1 = category×care, 2 = tier×care, 3 = care type",
    "cost": "total_amount billed (yuan)",
    "peer_median_total": "median total_amount of the claim's peer group at fit (yuan)",
    "cost_ratio": "total_amount / median total_amount of the peer group",
    "cost_z": "robust z-score of log(total_amount) within the peer group ((x − median) / (1.4826·MAD))",
    "cost_pct": "percentile of total_amount within the peer group at fit time (0–1)",
    "los": "length of stay in days (discharge − admit; 0 for same-day care)",
    "los_ratio": "length of stay / median length of stay of the peer group (1 when the median is 0)",
    "los_z": "robust z-score of the length of stay within the peer group",
    "lines": "number of item lines",
    "lines_z": "robust z-score of the number of item lines within the peer group",
    "drug_share": "share of the billed amount on drug lines",
    "drug_share_z": "robust z-score of drug_share within the peer group",
    "exam_share": "share of the billed amount on exam lines",
    "exam_share_z": "robust z-score of exam_share within the peer group",
    "drug_cost_z": "robust z-score of log(drug amount) within the peer group",
    "eligible_share": "eligible_amount / total_amount",
    "eligible_share_z": "robust z-score of eligible_share within the peer group",
    "lines_per_day": "item lines per calendar day of the claim (discharge − admit + 1)",
    "lines_per_day_z": "robust z-score of lines_per_day within the peer group",
    "dup_lines": "item lines repeating an item_code already billed on the same service_date",
    "dup_share": "dup_lines / lines",
    "price_ratio_max": "largest unit_price / reference price of its item_code (reference = median unit price at fit at providers of the same region and tier, else same tier, else all)",
    "drug_price_pct": "amount-weighted mean percentile of the claim's drug unit prices among drug lines of the same diagnosis category and care type at fit (0.5 without drugs)",
    "overprice_share": "share of the billed amount above the reference prices (Σ max(0, amount − quantity·reference) / total)",
    "atypical_share": "share of the billed amount on item codes seen in < rare_item_share of the peer claims at fit",
    "core_missing_share": "share of the peer group's core items (billed on ≥ 50 % of its claims at fit) missing from the claim",
    "empty_days": "inpatient: calendar days of the stay without any drug, exam, treatment, consumable or other line",
    "empty_day_share": "empty_days / calendar days of the stay (0 for same-day care)",
    "claims_during_stay": "inpatient: the patient's claims at other providers with a date strictly inside this stay",
    "readmit_15d": "1 if an inpatient stay of the same patient with the same 3-char diagnosis ended ≤ readmit_days before admission",
    "readmitted_15d": "1 if the same patient was readmitted for the same 3-char diagnosis ≤ readmit_days after discharge",
    "split_stay": "1 if the stay and another of the same patient, category and provider are ≤ readmit_days apart (either side)",
    "cohort_size": "inpatient: other stays at the same provider with the same admit and discharge dates",
    "cohort_lift": "(cohort_size + 1) / (expected + 1), expected from the provider's admissions that day and its length-of-stay mix",
    "same_day_dx_lift": "claims with the same 3-char diagnosis at the provider on admit_date / (expected from its claims that day and its diagnosis mix + 1): cards used together",
    "weekend": "1 if admit_date is a Saturday or Sunday",
    "out_of_region": "1 if the patient's region differs from the provider's region",
    "regions_same_day": "other regions where the patient's card was used on admit_date",
    "providers_same_day": "other providers where the patient's card was used on admit_date",
    "exam_pattern_claims": "claims at this provider with exactly the same set of exam lines (code and quantity)",
    "exam_pattern_lift": "how much more often this exact exam set occurs at the provider than at providers of the same type and tier",
    "exam_line_lift": "largest over the claim's exam codes of the provider's use of that code relative to same type-and-tier providers",
    "implausible_lines": "lines whose item_code is almost never billed for the patient's sex or age (learned at fit)",
    "implausible_dx": "1 if the diagnosis category is almost never seen for the patient's sex or age (learned at fit)",
    "patient_supply_ratio": "the patient's drug days supplied / days elapsed (see patient table)",
    "drug_oversupply": "largest, over the claim's drugs outside stays, of the patient's rate of buying that drug (units per day between first and last purchase, 3 purchases or more, anywhere) / the drug's typical rate among its repeat buyers at fit; 0 when none is bought repeatedly",
    "patient_providers_90d": "the patient's distinct providers per 90 days",
    "patient_pharmacies_90d": "the patient's distinct pharmacies per 90 days",
    "patient_max_claims_30d": "the patient's largest number of claims in any 30-day window",
    "co_purchase_days": "most days on which the card bought the same drug at the same provider on the same day as one other card (family cards, card pools)",
    "drug_line_lift": "largest lift of the claim's drug codes outside stays at its provider: claims billing the code there / claims expected from the provider's volume and its type × tier peers",
    "drug_swap_lift": "drug swapping: largest lift, over the claim's drugs dearer than their substitutes (drugs billed for the same diagnosis categories × care types in the same proportions, cosine ≥ 0.95 at fit; premium = log reference price − use-weighted mean log reference price of the substitutes > 0.05), of the provider's claims billing the drug against those expected from its claims billing any substitute and the drug's share among the substitutes at its type × tier peers (provider left out), (n + 1) / (expected + 1); only where the excess is significant (binomial z > 3), else 1",
    "cheaper_dx_llr": "upcoding: how much better (log-likelihood) the inpatient stay's item codes fit the Bernoulli item profile of a cheaper inpatient diagnosis group (lower median cost; profiles learned at fit) than the group billed; 0 where none fits better or the group is unknown",
}

#: Patient feature table (index ``patient_id``). Drug quantity becomes days of supply through each
#: drug's typical units per day among its repeat buyers at fit (one unit = one day when quantity is
#: recorded in days), so packs, boxes and days all work.
PATIENT_COLUMNS: dict[str, str] = {
    "claims": "number of claims",
    "span_days": "days from first to last claim date, plus one",
    "claims_per_30d": "claims per 30 days (span floored at 30 days)",
    "max_claims_30d": "largest number of claims in any 30-day window",
    "providers_per_90d": "distinct providers per 90 days (span floored at 90 days)",
    "pharmacies_per_90d": "distinct pharmacies per 90 days",
    "doctors_per_90d": "distinct doctors per 90 days",
    "drug_days": "drug quantity bought outside stays (Σ quantity of drug lines; days when quantity is in days)",
    "supply_ratio": "largest, over drugs bought ≥ 3 times, of units per day consumed between purchases / the drug's typical units per day among repeat buyers at fit (= days supplied / days elapsed); ≫ 1 means buying far beyond need",
    "distant_days": "days on which the card was used in two or more regions",
    "stay_overlaps": "claims made while the patient was in hospital elsewhere",
    "out_of_region_share": "share of claims at providers of another region",
    "implausible_lines": "item lines implausible for the patient's sex or age",
    "fund_paid": "fund_paid summed over the patient's claims",
    "co_purchase_days": "largest co_purchase_days over the patient's claims",
}

#: Provider feature table (index ``provider_id``). Means and shares over a provider's claims are
#: shrunk towards the batch-wide value by 20 pseudo-claims, so that small providers are not
#: extreme by chance.
PROVIDER_COLUMNS: dict[str, str] = {
    "peer_group": "provider type × 4 + tier (hospital 0–3, clinic 4, pharmacy 8): providers are compared within it",
    "tier": "provider tier (0 clinic or pharmacy, 1–3 hospital level)",
    "beds": "beds",
    "claims": "number of claims",
    "patients": "distinct patients",
    "doctors": "distinct doctors",
    "fund_paid": "fund_paid summed over the provider's claims",
    "claims_per_patient": "claims / patients",
    "admissions_per_bed": "inpatient admissions per bed per 30 days",
    "admission_rate_z": "robust z-score of log(1 + admissions_per_bed) among providers of the same type and tier at fit",
    "cost_z_mean": "mean claim cost_z",
    "los_z_mean": "mean claim los_z over inpatient claims",
    "peer_outlier_share": "share of claims with cost_z, los_z, lines_z or lines_per_day_z above 3",
    "readmit_share": "share of inpatient claims that are (or are followed by) a readmission within readmit_days",
    "empty_day_share": "mean empty_day_share over inpatient claims",
    "stay_overlap_share": "share of inpatient claims with claims_during_stay > 0",
    "cohort_lift_mean": "mean cohort_lift over inpatient claims",
    "dup_share": "duplicated lines / lines",
    "overprice_share": "billed amount above reference prices / billed amount",
    "atypical_share": "billed amount on codes atypical for the diagnosis / billed amount",
    "drug_cost_z_mean": "mean claim drug_cost_z",
    "overpriced_claim_share": "share of claims with a unit price over 1.05× its reference price",
    "dup_claim_share": "share of claims with an item line repeated on the same day",
    "expensive_drug_share": "share of claims with drugs whose drug_price_pct is above 0.9",
    "cost_outlier_share": "share of claims with cost_z above 3",
    "cheap_for_group_share": "share of inpatient claims with cost_z below −1 (a diagnosis richer than the bill)",
    "long_stay_share": "share of inpatient claims with los_z above 3",
    "empty_stay_share": "share of inpatient claims with more than 20 % empty stay days",
    "cohort_share": "share of inpatient claims admitted and discharged in a group (cohort_lift above 2)",
    "atypical_claim_share": "share of claims with more than 20 % of the bill on items atypical for the diagnosis",
    "split_stay_share": "share of inpatient claims that are split stays (split_stay)",
    "core_missing_mean": "mean core_missing_share over inpatient claims",
    "group_claim_share": "share of claims in same-day same-diagnosis groups (same_day_dx_lift above 2)",
    "exam_pattern_share": "share of claims whose exam set is over-represented here (exam_pattern_lift > 5 and ≥ 10 claims)",
    "exam_line_lift_mean": "mean claim exam_line_lift",
    "weekend_share": "share of claims admitted on a weekend",
    "out_of_region_share": "share of claims from patients of another region",
    "top_region_share": "share of out-of-region claims coming from the single most frequent outside region",
    "implausible_share": "share of claims with an implausible line or diagnosis",
    "top_doctor_share": "share of claims signed by the provider's busiest doctor",
    "doctor_hhi": "Herfindahl index of claims over doctors (1 = one doctor)",
    "patient_supply_ratio_mean": "mean supply_ratio of the provider's patients (claim-weighted)",
    "high_supply_share": "share of claims by patients with supply_ratio > 2",
    "high_supply_patients": "distinct patients with supply_ratio > 2 among the provider's patients",
    "oversupply_claim_share": "share of claims with drugs that sell a drug to a patient buying it at over OVERSUPPLY (1.5) × its typical rate (drug_oversupply)",
    "patient_providers_mean": "mean providers_per_90d of the provider's patients (claim-weighted)",
    "partner_share": "largest share of this provider's patients also seen at one other provider",
    "partner_lift": "shared patients with that top partner / number expected if patients chose independently",
    "peer_outlier_sig": "z of the exact binomial tail of the claims counted in peer_outlier_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "readmit_sig": "z of the exact binomial tail of the claims counted in readmit_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "stay_overlap_sig": "z of the exact binomial tail of the claims counted in stay_overlap_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "cohort_sig": "z of the exact binomial tail of the claims counted in cohort_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "dup_claim_sig": "z of the exact binomial tail of the claims counted in dup_claim_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "overpriced_claim_sig": "z of the exact binomial tail of the claims counted in overpriced_claim_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "expensive_drug_sig": "z of the exact binomial tail of the claims counted in expensive_drug_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "cost_outlier_sig": "z of the exact binomial tail of the claims counted in cost_outlier_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "cheap_for_group_sig": "z of the exact binomial tail of the claims counted in cheap_for_group_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "long_stay_sig": "z of the exact binomial tail of the claims counted in long_stay_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "empty_stay_sig": "z of the exact binomial tail of the claims counted in empty_stay_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "atypical_claim_sig": "z of the exact binomial tail of the claims counted in atypical_claim_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "exam_pattern_sig": "z of the exact binomial tail of the claims counted in exam_pattern_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "implausible_sig": "z of the exact binomial tail of the claims counted in implausible_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "high_supply_sig": "z of the exact binomial tail of the claims counted in high_supply_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "oversupply_claim_sig": "z of the exact binomial tail of the claims counted in oversupply_claim_share, at the pooled rate of the provider's class (type × tier, else type) in the batch",
    "cost_z_sig": "Stouffer z of cost_z_mean: the claims' values standardised within the provider's class (type × tier, else type) in the batch, summed / √claims",
    "los_z_sig": "Stouffer z of los_z_mean: the claims' values standardised within the provider's class (type × tier, else type) in the batch, summed / √claims",
    "drug_cost_z_sig": "Stouffer z of drug_cost_z_mean: the claims' values standardised within the provider's class (type × tier, else type) in the batch, summed / √claims",
    "exam_line_lift_sig": "Stouffer z of exam_line_lift_mean: the claims' values standardised within the provider's class (type × tier, else type) in the batch, summed / √claims",
    "core_missing_sig": "Stouffer z of core_missing_mean: the claims' values standardised within the provider's class (type × tier, else type) in the batch, summed / √claims",
    "patient_supply_ratio_sig": "Stouffer z of patient_supply_ratio_mean: the claims' values standardised within the provider's class (type × tier, else type) in the batch, summed / √claims",
}

#: Direction in which a feature is suspicious: +1 high is suspicious, 0 both tails.
#: Detectors use it to ignore the harmless tail (a cheap claim is not fraud evidence).
DIRECTIONS: dict[str, int] = {name: 1 for name in (*CLAIM_COLUMNS, *PATIENT_COLUMNS, *PROVIDER_COLUMNS)}
DIRECTIONS.update({"drug_share_z": 0, "exam_share_z": 0, "eligible_share_z": 0, "cost_z": 1, "lines_z": 1,
                   "peer_level": 0, "tier": 0, "beds": 0, "peer_group": 0})

#: Columns that are already calibrated z-scores against chance (the providers' ``*_sig``): a detector
#: that rescales features keeps at least their own unit, so that a near-constant column (most
#: pharmacies have no implausible claim) does not turn one odd claim into a 50-sigma outlier
#: (provider forest p@k on default / hard 300k: 0.75 / 0.68 -> 0.77 / 0.70). The claims' peer
#: z-scores are not among them: their robust rescaling measured better (claim recall per scheme).
Z_UNITS: frozenset[str] = frozenset(c for c in PROVIDER_COLUMNS if c.endswith("_sig"))

#: Claim columns the detectors model by default: unitless, comparable across peer groups, one per
#: signal (a forest dilutes a rare signal among many redundant columns: measured, fewer is better).
#: ``drug_swap_lift`` stands in for ``drug_price_pct`` (which still feeds the providers'
#: ``expensive_drug_*``): on default 1M (seed 31, forest seeds 31 and 1-5) drug-swapping recall in
#: the top 5 % 0.47 -> 0.73, over-charging 0.82 -> 0.89, claim PR-AUC 0.46 -> 0.48, upcoding 0.58 -> 0.56.
#: ``cheaper_dx_llr`` (forest seeds 0 / 31): upcoding recall 0.64 / 0.63 -> 0.84 / 0.81 on default 1M
#: (claim PR-AUC 0.49 / 0.47 -> 0.51 / 0.48), 0.65 / 0.60 -> 0.80 / 0.78 on hard 300k, and 0.67 / 0.73 ->
#: 0.87 / 0.80 on a batch planted by other code (benchmarks/foreign.py, seed 1).
CLAIM_MODEL_FEATURES = [
    "cost_z", "los_z", "drug_cost_z", "dup_share", "price_ratio_max", "overprice_share", "drug_swap_lift",
    "atypical_share", "core_missing_share", "empty_day_share", "claims_during_stay", "split_stay", "cohort_lift",
    "same_day_dx_lift", "out_of_region", "regions_same_day", "exam_pattern_lift", "implausible_lines", "implausible_dx",
    "patient_supply_ratio", "patient_pharmacies_90d", "co_purchase_days", "drug_line_lift", "cheaper_dx_llr",
]

#: Patient columns the detectors model by default. ``co_purchase_days`` is modelled on claims only:
#: in the patient forest, whose score is lent to all the patient's claims, it lifted ordinary
#: chronic buyers past the fence (claim PR-AUC on default 300k 0.65 -> 0.56).
PATIENT_MODEL_FEATURES = [
    "claims_per_30d", "max_claims_30d", "providers_per_90d", "pharmacies_per_90d", "doctors_per_90d",
    "supply_ratio", "distant_days", "stay_overlaps", "implausible_lines",
]

#: Provider columns the detectors model by default: shares and means enter as their significance
#: (``*_sig``: how far beyond chance given the claims behind them), not as raw shares. Out-of-region shares are left out: providers
#: in a distant region or on a border treat outside patients legitimately, and with them in,
#: precision@k fell by 0.08-0.11 (default and hard scenarios); bussed-in groups show in cohort_share.
PROVIDER_MODEL_FEATURES = [
    "claims_per_patient", "admission_rate_z", "cost_z_sig", "los_z_sig", "peer_outlier_sig", "readmit_sig",
    "empty_day_share", "stay_overlap_sig", "cohort_sig", "dup_claim_sig", "overpriced_claim_sig",
    "expensive_drug_sig", "cost_outlier_sig", "cheap_for_group_sig", "long_stay_sig", "empty_stay_sig",
    "atypical_claim_sig", "drug_cost_z_sig", "exam_pattern_sig", "exam_line_lift_sig", "implausible_sig",
    "patient_supply_ratio_sig", "high_supply_sig", "oversupply_claim_sig", "high_supply_patients", "patient_providers_mean", "partner_lift",
    "core_missing_sig",
]


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _times(x) -> str:
    x = _num(x)
    return "n/a" if math.isnan(x) else (f"{x:.1f}×" if x < 100 else f"{x:.0f}×")


def _pct(x) -> str:
    x = _num(x)
    if math.isnan(x):
        return "n/a"
    return f"{100 * x:.1f} %" if 0 < abs(x) < 0.01 else f"{100 * x:.0f} %"  # 0.4 %, not "0 %"


def _z(x) -> str:
    x = _num(x)
    return "n/a" if math.isnan(x) else f"{x:+.1f}"


def _n(x) -> str:
    x = _num(x)
    return "n/a" if math.isnan(x) else (f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.1f}")


def _count(x, noun: str, plural: str | None = None) -> str:
    """``1 item line``, ``3 item lines``."""
    return f"{_n(x)} {noun if _num(x) == 1 else plural or noun + 's'}"


# feature -> sentence built from the feature row (a mapping of column -> value)
_SENTENCES = {
    "cost_z": lambda r: f"cost {_times(r.get('cost_ratio'))} the median of its diagnosis/tier/care group (z {_z(r.get('cost_z'))})",
    "cost_pct": lambda r: f"cost above {_pct(r.get('cost_pct'))} of its diagnosis/tier/care group",
    "cost_ratio": lambda r: f"cost {_times(r.get('cost_ratio'))} the group median",
    "los_z": lambda r: f"stay {_times(r.get('los_ratio'))} the group median ({_n(r.get('los'))} days, z {_z(r.get('los_z'))})",
    "los_ratio": lambda r: f"stay {_times(r.get('los_ratio'))} the group median",
    "lines_z": lambda r: f"{_n(r.get('lines'))} item lines, unusually many for its group (z {_z(r.get('lines_z'))})",
    "drug_share_z": lambda r: f"drugs are {_pct(r.get('drug_share'))} of the bill, unusual for its group (z {_z(r.get('drug_share_z'))})",
    "exam_share_z": lambda r: f"exams are {_pct(r.get('exam_share'))} of the bill, unusual for its group (z {_z(r.get('exam_share_z'))})",
    "drug_cost_z": lambda r: f"drug spending far above its group (z {_z(r.get('drug_cost_z'))})",
    "eligible_share_z": lambda r: f"eligible share {_pct(r.get('eligible_share'))}, unusual for its group (z {_z(r.get('eligible_share_z'))})",
    "lines_per_day_z": lambda r: f"{_n(r.get('lines_per_day'))} item lines per day, unusual for its group (z {_z(r.get('lines_per_day_z'))})",
    "dup_share": lambda r: f"{_count(r.get('dup_lines'), 'item line')} billed twice on the same day",
    "dup_lines": lambda r: f"{_count(r.get('dup_lines'), 'item line')} billed twice on the same day",
    "price_ratio_max": lambda r: f"unit price {_times(r.get('price_ratio_max'))} catalogue",
    "overprice_share": lambda r: f"{_pct(r.get('overprice_share'))} of the bill above catalogue prices (unit price up to {_times(r.get('price_ratio_max'))} catalogue)",
    "drug_price_pct": lambda r: f"drugs priced above {_pct(r.get('drug_price_pct'))} of the drugs billed for this diagnosis",
    "atypical_share": lambda r: f"{_pct(r.get('atypical_share'))} of the bill on items rarely used for this diagnosis",
    "core_missing_share": lambda r: f"lacks {_pct(r.get('core_missing_share'))} of the items usual for its diagnosis group",
    "split_stay": lambda r: "one of two stays for the same diagnosis at this hospital within 15 days (a split stay)",
    # a claim row has the days; a provider row has the mean share over its stays
    "empty_day_share": lambda r: (f"{_count(r.get('empty_days'), 'day')} of the stay without a drug, test or treatment"
                                  if "empty_days" in r else
                                  f"stays have {_pct(r.get('empty_day_share'))} of their days without a drug, test or treatment on average"),
    "empty_days": lambda r: f"{_count(r.get('empty_days'), 'day')} of the stay without a drug, test or treatment",
    "claims_during_stay": lambda r: f"card used {_count(r.get('claims_during_stay'), 'time')} elsewhere during the stay",
    "readmit_15d": lambda r: "readmitted for the same diagnosis within 15 days of a discharge",
    "readmitted_15d": lambda r: "followed by a readmission for the same diagnosis within 15 days",
    "cohort_size": lambda r: f"admitted and discharged on the same days as {_n(r.get('cohort_size'))} other patients",
    "cohort_lift": lambda r: f"admitted and discharged together with {_n(r.get('cohort_size'))} other patients ({_times(r.get('cohort_lift'))} expected)",
    "same_day_dx_lift": lambda r: f"one of a group of same-diagnosis claims here that day ({_times(r.get('same_day_dx_lift'))} expected)",
    "weekend": lambda r: "admitted on a weekend",
    "out_of_region": lambda r: "patient from another region",
    "regions_same_day": lambda r: f"card used in {_n(r.get('regions_same_day'))} other region(s) the same day",
    "providers_same_day": lambda r: f"card used at {_n(r.get('providers_same_day'))} other provider(s) the same day",
    "exam_pattern_lift": lambda r: f"identical exam lines on {_n(r.get('exam_pattern_claims'))} claims here ({_times(r.get('exam_pattern_lift'))} usual)",
    "exam_pattern_claims": lambda r: f"identical exam lines on {_n(r.get('exam_pattern_claims'))} claims here",
    "exam_line_lift": lambda r: f"an exam billed here {_times(r.get('exam_line_lift'))} as often as at similar providers",
    "implausible_lines": lambda r: f"{_n(r.get('implausible_lines'))} item(s) implausible for the patient's sex or age",
    "implausible_dx": lambda r: "diagnosis implausible for the patient's sex or age",
    "drug_line_lift": lambda r: f"a drug billed here {_times(r.get('drug_line_lift'))} as often as at similar providers",
    "drug_swap_lift": lambda r: f"a drug dearer than its substitutes billed here {_times(r.get('drug_swap_lift'))} as often, among them, as at similar providers",
    "cheaper_dx_llr": lambda r: "the stay's items are those of a cheaper diagnosis than the one billed",
    "co_purchase_days": lambda r: f"card bought the same drug at the same place and day as another card on {_n(r.get('co_purchase_days'))} days",
    "patient_supply_ratio": lambda r: f"patient supplied {_times(r.get('patient_supply_ratio'))} the days elapsed in drugs",
    "patient_pharmacies_90d": lambda r: f"patient uses {_n(r.get('patient_pharmacies_90d'))} pharmacies per 90 days",
    "patient_providers_90d": lambda r: f"patient uses {_n(r.get('patient_providers_90d'))} providers per 90 days",
    "patient_max_claims_30d": lambda r: f"patient made {_n(r.get('patient_max_claims_30d'))} claims within 30 days",
    # provider level
    "claims_per_patient": lambda r: f"{_n(r.get('claims_per_patient'))} claims per patient",
    "admission_rate_z": lambda r: f"{_n(r.get('admissions_per_bed'))} admissions per bed per 30 days, high for its tier (z {_z(r.get('admission_rate_z'))})",
    "admissions_per_bed": lambda r: f"{_n(r.get('admissions_per_bed'))} admissions per bed per 30 days",
    "cost_z_mean": lambda r: f"claims cost more against their peer groups than at similar providers (mean z {_z(r.get('cost_z_mean'))})",
    "los_z_mean": lambda r: f"stays longer against their peer groups than at similar providers (mean z {_z(r.get('los_z_mean'))})",
    "peer_outlier_share": lambda r: f"{_pct(r.get('peer_outlier_share'))} of claims are outliers of their peer group",
    "readmit_share": lambda r: f"{_pct(r.get('readmit_share'))} of stays are 15-day readmissions for the same diagnosis",
    "stay_overlap_share": lambda r: f"{_pct(r.get('stay_overlap_share'))} of stays overlap claims elsewhere",
    "cohort_lift_mean": lambda r: f"patients admitted and discharged in groups ({_times(r.get('cohort_lift_mean'))} expected)",
    "drug_cost_z_mean": lambda r: f"drug spending higher against peer groups than at similar providers (mean z {_z(r.get('drug_cost_z_mean'))})",
    "exam_pattern_share": lambda r: f"{_pct(r.get('exam_pattern_share'))} of claims repeat one exam set seen far more here than elsewhere",
    "exam_line_lift_mean": lambda r: f"exams billed {_times(r.get('exam_line_lift_mean'))} as often as at similar providers",
    "out_of_region_share": lambda r: f"{_pct(r.get('out_of_region_share'))} of claims from patients of other regions",
    "top_region_share": lambda r: f"{_pct(r.get('top_region_share'))} of outside patients come from one region",
    "implausible_share": lambda r: f"{_pct(r.get('implausible_share'))} of claims have items implausible for the patient",
    "overpriced_claim_share": lambda r: f"{_pct(r.get('overpriced_claim_share'))} of claims priced above the catalogue",
    "dup_claim_share": lambda r: f"{_pct(r.get('dup_claim_share'))} of claims bill an item twice on the same day",
    "expensive_drug_share": lambda r: f"{_pct(r.get('expensive_drug_share'))} of drug claims use the dearest drugs for the diagnosis",
    "cost_outlier_share": lambda r: f"{_pct(r.get('cost_outlier_share'))} of claims cost far more than their peer group",
    "cheap_for_group_share": lambda r: f"{_pct(r.get('cheap_for_group_share'))} of stays cost less than their diagnosis group suggests",
    "long_stay_share": lambda r: f"{_pct(r.get('long_stay_share'))} of stays far longer than their peer group",
    "empty_stay_share": lambda r: f"{_pct(r.get('empty_stay_share'))} of stays have days with no care billed",
    "cohort_share": lambda r: f"{_pct(r.get('cohort_share'))} of stays admitted and discharged in groups",
    "atypical_claim_share": lambda r: f"{_pct(r.get('atypical_claim_share'))} of claims bill items atypical for the diagnosis",
    "split_stay_share": lambda r: f"{_pct(r.get('split_stay_share'))} of stays split into readmissions within 15 days",
    "core_missing_mean": lambda r: f"stays lack {_pct(r.get('core_missing_mean'))} of their diagnosis group's usual items on average",
    "group_claim_share": lambda r: f"{_pct(r.get('group_claim_share'))} of claims come in same-day groups with one diagnosis",
    "top_doctor_share": lambda r: f"one doctor signs {_pct(r.get('top_doctor_share'))} of claims",
    "doctor_hhi": lambda r: f"claims concentrated on few doctors (HHI {_n(r.get('doctor_hhi'))})",
    "patient_supply_ratio_mean": lambda r: f"its patients are supplied {_times(r.get('patient_supply_ratio_mean'))} the days elapsed in drugs",
    "high_supply_share": lambda r: f"{_pct(r.get('high_supply_share'))} of claims by patients buying over twice their need",
    "high_supply_patients": lambda r: f"{_n(r.get('high_supply_patients'))} of its patients buy drugs over twice their need",
    "oversupply_claim_share": lambda r: f"{_pct(r.get('oversupply_claim_share'))} of its drug claims sell a drug to a patient buying it over 1.5× as fast as usual",
    "drug_oversupply": lambda r: f"patient buys this drug {_times(r.get('drug_oversupply'))} as fast as its usual buyers",
    "patient_providers_mean": lambda r: f"its patients use {_n(r.get('patient_providers_mean'))} providers per 90 days",
    "partner_share": lambda r: f"{_pct(r.get('partner_share'))} of its patients also use one other provider",
    "partner_lift": lambda r: f"shares {_pct(r.get('partner_share'))} of its patients with one other provider ({_times(r.get('partner_lift'))} chance)",
}


def _significance_sentence(base: str):
    return lambda r: f"{_SENTENCES[base](r)} (z {_z(r.get(base.rsplit('_', 1)[0] + '_sig'))} against similar providers)"


# a significance column reads as its share or mean, with how far beyond chance it is
_SENTENCES.update({f"{base.rsplit('_', 1)[0]}_sig": _significance_sentence(base) for base in (
    *(f"{r}_share" for r in ("peer_outlier", "readmit", "stay_overlap", "cohort", "dup_claim", "overpriced_claim",
                             "expensive_drug", "cost_outlier", "cheap_for_group", "long_stay", "empty_stay",
                             "atypical_claim", "exam_pattern", "implausible", "high_supply", "oversupply_claim")),
    *(f"{m}_mean" for m in ("cost_z", "los_z", "drug_cost_z", "exam_line_lift", "patient_supply_ratio", "core_missing")))})


def describe(feature: str, row) -> str:
    """Inspector-readable sentence for ``feature`` of one feature row (a mapping or Series).

    >>> describe("los_z", {"los": 17, "los_ratio": 3.4, "los_z": 6.2})
    'stay 3.4× the group median (17 days, z +6.2)'
    """
    row = row if hasattr(row, "get") else dict(row)
    make = _SENTENCES.get(feature)
    if make is not None:
        try:
            return make(row)
        except Exception:  # a missing helper column must not break a report
            pass
    z_note = "above" if _num(row.get(feature)) > 0 else "unusual"
    return f"{feature.replace('_', ' ')} = {_n(row.get(feature))} ({z_note} its peers)"

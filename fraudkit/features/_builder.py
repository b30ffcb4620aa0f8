"""``FeatureBuilder``: from a :class:`~fraudkit.io.Batch` to claim, patient and provider feature tables."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from fraudkit._threads import done_or_run
from fraudkit.io import in_batch_order, split_by_patient

from ._columns import CLAIM_COLUMNS, PATIENT_COLUMNS, PROVIDER_COLUMNS
from ._copurchase import co_purchase_days
from ._lines import Lines, line_features, line_totals
from ._prep import (binomial_excess_z, cat_codes, codes_in, count_by, days, distinct, distinct_per, group_max, group_nunique,
                    group_quantiles, group_sum, robust_location_scale, stouffer_excess_z, window_counts)
from ._swap import substitutes, swap_lift
from ._upcoding import cheaper_group_llr, item_profiles

CARE = ("outpatient", "chronic", "inpatient", "pharmacy")
INPATIENT, PHARMACY = 2, 3
KINDS = ("drug", "exam", "treatment", "consumable", "bed", "other")
DRUG, EXAM, BED = 0, 1, 4
PTYPES = ("hospital", "clinic", "pharmacy")

# peer metrics and the floor of their robust scale (so near-constant groups do not explode)
_PEER_METRICS = {"log_cost": 0.05, "los": 0.5, "lines": 0.5, "drug_share": 0.02, "exam_share": 0.02,
                 "log_drug": 0.1, "eligible_share": 0.02, "lines_per_day": 0.1}
_QS = np.linspace(0.0, 1.0, 41)
#: A patient buying a drug this many times faster than its usual repeat buyers is over-supplied
#: (resale); providers count the claims that sell to one (``oversupply_claim_share``).
OVERSUPPLY = 1.5
PRIOR_CLAIMS = 20.0  # pseudo-claims shrinking provider shares and means towards the batch-wide value
#: Claim columns that count over other patients' claims at the provider or in its class
#: (:meth:`FeatureBuilder._cross`): a part of a batch cut by patient cannot compute them alone.
CROSS_COLUMNS = ("cohort_size", "cohort_lift", "same_day_dx_lift", "co_purchase_days", "exam_pattern_claims",
                 "exam_pattern_lift", "exam_line_lift", "drug_line_lift", "drug_swap_lift")
#: The other claim columns the providers' features read (:meth:`FeatureBuilder.combine` needs only
#: these of a part's columns, :meth:`PartFeatures.slim`).
PROVIDER_INPUTS = ("cost_z", "los_z", "lines_z", "lines_per_day_z", "drug_cost_z", "empty_day_share", "dup_lines",
                   "overprice_share", "atypical_share", "split_stay", "core_missing_share", "weekend", "out_of_region",
                   "readmit_15d", "readmitted_15d", "claims_during_stay", "price_ratio_max", "drug_price_pct",
                   "implausible_lines", "implausible_dx", "drug_oversupply")


@dataclass
class Features:
    """The three feature tables of one batch (columns documented in ``fraudkit.features``)."""

    claims: pd.DataFrame
    patients: pd.DataFrame
    providers: pd.DataFrame

    def table(self, entity: str) -> pd.DataFrame:
        """The table of ``entity`` (``"claim"``, ``"patient"`` or ``"provider"``)."""
        return {"claim": self.claims, "patient": self.patients, "provider": self.providers}[entity.rstrip("s")]


def _column_doc(title: str, columns: dict[str, str]) -> str:
    lines = [f"    {title}", "    " + "-" * len(title)]
    for name, meaning in columns.items():
        lines.append(f"    ``{name}``\n        {meaning}")
    return "\n".join(lines)


# the column lists live once, in _columns.py; the docstring shows them
Features.__doc__ = (Features.__doc__ or "") + "\n\n" + "\n\n".join([
    _column_doc("claims (index claim_id)", CLAIM_COLUMNS),
    _column_doc("patients (index patient_id)", PATIENT_COLUMNS),
    _column_doc("providers (index provider_id)", PROVIDER_COLUMNS),
]) + "\n"


class _Columns:
    """A table of float columns written straight into the storage of the DataFrame it becomes.

    The claim table (54 columns, 430 MB for a million claims) was built column by column in a
    DataFrame, each column copied in, then copied again when its columns were put in order.
    Here each column is written once into its row of one (columns x rows) block, pandas' own
    layout, and :meth:`frame` wraps that block without a copy.
    """

    def __init__(self, n: int, names):
        self.names = list(names)
        self._pos = {name: j for j, name in enumerate(self.names)}
        self._data = np.empty((len(self.names), n))
        self._written = np.zeros(len(self.names), dtype=bool)

    def _row(self, name: str) -> int:
        if name not in self._pos:
            raise KeyError(f"{name!r} is not a column of this table; add it to the table's column list first")
        return self._pos[name]

    def __setitem__(self, name: str, values) -> None:
        if isinstance(values, pd.Series) and not values.index.equals(pd.RangeIndex(self._data.shape[1])):
            raise TypeError(f"column {name!r}: a Series with its own index would be aligned, not copied; pass its values")
        j = self._row(name)
        self._data[j] = values
        self._written[j] = True

    def __getitem__(self, name: str) -> np.ndarray:
        return self._data[self._row(name)]

    def arrays(self) -> dict[str, np.ndarray]:
        """Every column written so far, by name."""
        return {name: self._data[j] for name, j in self._pos.items() if self._written[j]}

    def frame(self, index: pd.Index) -> pd.DataFrame:
        """The table, indexed by ``index``, its storage this object's block (no copy)."""
        missing = [name for name, done in zip(self.names, self._written) if not done]
        if missing:
            raise RuntimeError(f"feature columns never computed: {missing}")
        return pd.DataFrame(self._data.T, index=index, columns=self.names, copy=False)


def _id_index(ids: pd.Series, name: str) -> pd.Index:
    """The index of a feature table: the batch's ids as they are (Arrow strings stay Arrow strings,
    not a million Python strings converted back to Arrow)."""
    return pd.Index(ids.array if isinstance(ids.dtype, pd.StringDtype) else ids.to_numpy(), name=name)


def _line_arrays(items: pd.DataFrame, claim_id: pd.Series, n: int, whole: bool, cidx: np.ndarray | None):
    """The item lines as a chunked source, every line's columns (``whole``: for fitting) and their
    per-claim sums, reduced chunk by chunk (fraudkit.features._lines)."""
    src = Lines(items, claim_id, cidx=cidx)
    return src, (src.whole() if whole else None), line_totals(src, n)


class _Base:
    """Column arrays of a batch that need no learned state (one row per claim / item line)."""

    def __init__(self, batch, lines: bool = True):
        c, it, pat, prov = batch.claims, batch.items, batch.patients, batch.providers
        self.n = n = len(c)
        self.claim_id = c["claim_id"]
        # a loaded Batch keeps the rows its validation looked up (Batch.rows_of); other batch-likes are coded here
        known = getattr(batch, "rows_of", None) or (lambda table, column: None)
        with ThreadPoolExecutor(max_workers=1) as pool:  # the item lines on a second core beside the claims' columns
            line_job = pool.submit(_line_arrays, it, self.claim_id, n, lines, known("items", "claim_id"))
            self._claim_columns(c, pat, prov, known("claims", "patient_id"), known("claims", "provider_id"))
            self.line_source, whole, t = line_job.result()
        src = self.line_source
        self.m = src.m
        self.code_values = src.code_values
        if lines:
            self.cidx, self.code_raw, self.kind = whole.cidx, whole.code_raw, whole.kind
            self.qty, self.price, self.amount, self.sday = whole.qty, whole.price, whole.amount, whole.sday
        self.lines, self.item_total, self.drug_amount, self.drug_qty = t.lines, t.item_total, t.drug_amount, t.drug_qty
        denom = np.where(self.item_total > 0, self.item_total, 1.0)
        self.drug_share, self.exam_share = t.drug_amount / denom, t.exam_amount / denom
        self.dup_lines, self.active_days = t.dup_lines, t.active_days
        self.exam_lines, self.exam_sig = t.exam_lines, t.exam_sig

    def _claim_columns(self, c: pd.DataFrame, pat: pd.DataFrame, prov: pd.DataFrame,
                       pcode: np.ndarray | None, vcode: np.ndarray | None) -> None:
        self.patient_ids, self.provider_ids = pat["patient_id"], prov["provider_id"]
        self.pcode = codes_in(pat["patient_id"], c["patient_id"]) if pcode is None else pcode
        self.vcode = codes_in(prov["provider_id"], c["provider_id"]) if vcode is None else vcode
        self.n_pat, self.n_prov = len(pat), len(prov)
        regions, self.region_values = pd.factorize(pd.concat([pat["region"].astype("str"), prov["region"].astype("str")],
                                                             ignore_index=True))
        self.pat_region, self.prov_region_all = regions[: len(pat)], regions[len(pat):]
        self.prov_region_str = prov["region"].astype("str")
        self.prov_type_all = cat_codes(prov["provider_type"], PTYPES)
        self.prov_tier_all = prov["tier"].to_numpy(dtype=np.int64)
        self.prov_beds_all = prov["beds"].to_numpy(dtype=float)
        self.tier = self.prov_tier_all[self.vcode]
        self.ptype = self.prov_type_all[self.vcode]
        self.region_p = self.pat_region[self.pcode]
        self.region_v = self.prov_region_all[self.vcode]
        female = (pat["sex"].astype("str") == "F").to_numpy()
        self.female = female[self.pcode]
        self.care = cat_codes(c["care_type"], CARE)
        self.admit, self.discharge = days(c["admit_date"]), days(c["discharge_date"])
        self.los = np.maximum(self.discharge - self.admit, 0).astype(float)
        self.cal_days = self.los + 1.0
        year = c["admit_date"].dt.year.to_numpy(dtype=np.int64)
        self.age = (year - pat["birth_year"].to_numpy(dtype=np.int64)[self.pcode]).astype(float)
        diag_codes, diag_values = pd.factorize(c["diagnosis"].fillna(""))
        dx3_values = pd.Series(np.asarray(diag_values, dtype=object), dtype="str").str.strip().str.upper().str[:3]
        # each claim's ICD-10 category as a code into its distinct values; the diagnoses come in order
        # of first appearance, so the codes are those of factorising every claim's category
        dx3_of_diag, self.dx3_values = pd.factorize(dx3_values)
        self.dx3_code = dx3_of_diag[diag_codes].astype(np.int64) if len(diag_values) else np.zeros(0, np.int64)
        self.total = c["total_amount"].to_numpy(dtype=float)
        self.eligible = c["eligible_amount"].to_numpy(dtype=float)
        self.fund = c["fund_paid"].to_numpy(dtype=float)
        doctor, self.doctor_values = pd.factorize(c["doctor_id"])
        self.doctor = doctor.astype(np.int64)  # nulls get -1

    def dx_codes(self, vocabulary: pd.Index) -> np.ndarray:
        """Each claim's category as its position in ``vocabulary`` (-1 where absent): looked up once per distinct category."""
        found = codes_in(vocabulary, pd.Series(np.asarray(self.dx3_values, dtype=object), dtype="str"))
        return found[self.dx3_code] if len(found) else np.full(self.n, -1, dtype=np.int64)

    def patient_days(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each claim's (patient, admission day) key, the stable order that sorts the keys, the sorted
        keys, and each claim's patient-day (0.. in key order): sorted once for every feature that
        reads a patient's claims day by day (cached)."""
        found = self.__dict__.get("_patient_days")
        if found is None:
            key = self.pcode * 1_000_000 + (self.admit - (self.admit.min() if self.n else 0))
            order = np.argsort(key, kind="stable")
            s = key[order]
            day = np.empty(self.n, dtype=np.int64)
            day[order] = np.cumsum(np.r_[True, s[1:] != s[:-1]][: self.n]) - 1
            found = self._patient_days = (key, order, s, day)
        return found

    def visit_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The distinct (patient, provider) pairs of the claims, in order of first appearance, and each
        pair's claims (:func:`pair_counts`; cached: the patients' providers, the providers' patients and
        the patients providers share are all read from them)."""
        found = self.__dict__.get("_visit_pairs")
        if found is None:
            found = self._visit_pairs = pair_counts(self.pcode, self.vcode)
        return found

    def drop_lines(self) -> None:
        """Forget the whole item lines' columns (``lines=True``), as if built with ``lines=False``."""
        for name in ("cidx", "code_raw", "kind", "qty", "price", "amount", "sday", "_vocab_codes"):
            self.__dict__.pop(name, None)

    def peer_keys(self, dx: np.ndarray) -> list[np.ndarray]:
        """Peer-group keys from the narrowest (category×tier×care) to the broadest (care); -1 = none."""
        care, tier = self.care, np.clip(self.tier, 0, 3)
        return [np.where(dx >= 0, dx * 16 + tier * 4 + care, -1), np.where(dx >= 0, dx * 4 + care, -1),
                tier * 4 + care, care.copy()]

    def metrics(self) -> pd.DataFrame:
        total = np.where(self.total > 0, self.total, 0.0)
        return pd.DataFrame({
            "log_cost": np.log1p(total), "los": self.los, "lines": self.lines,
            "drug_share": self.drug_share, "exam_share": self.exam_share, "log_drug": np.log1p(self.drug_amount),
            "eligible_share": np.where(total > 0, self.eligible / np.where(total > 0, total, 1), 1.0),
            "lines_per_day": self.lines / self.cal_days,
        })


class FeatureBuilder(BaseEstimator):
    """Learn peer and catalogue references from a batch; turn batches into feature tables.

    ``fit`` learns, per peer group (ICD-10 3-character category × provider tier ×
    care type, with fallbacks to category × care, tier × care and care type), the
    median and robust scale of cost, stay, lines and item mix, the percentiles of
    cost; per item code the reference price (median unit price), how typical the
    code is for each diagnosis category, and the sex and age range of its patients;
    per provider type and tier the usual admission rate per bed. ``transform`` applies
    the same computation to any batch, so training and scoring features are identical.
    Relational features (readmissions, same-day use elsewhere, repeated exam sets,
    patients shared between providers) are computed within the batch transformed.

    Parameters
    ----------
    min_peers : int, default=20
        Fewest fit-time claims for a peer group to have its own statistics.
    readmit_days : int, default=15
        Window for readmissions with the same diagnosis category.
    rare_item_share : float, default=0.01
        An item code billed on fewer than this share of the peer claims is atypical.
    implausible_share : float, default=0.005
        A code (or diagnosis) whose share of patients of one sex is below this is
        implausible for that sex; ages outside the code's 0.5–99.5 % range ± 5 years are implausible.
    min_support : int, default=50
        Fewest fit-time lines of a code before its sex and age profile is trusted.
    partners : bool, default=True
        Compute ``partner_share`` / ``partner_lift`` (a self-join of patient–provider pairs).
    max_fit_lines : int, default=2_000_000
        Item lines sampled (with ``random_state``) to learn sex/age profiles.
    random_state : int, default=0
        Seed of that sample.

    Examples
    --------
    >>> fb = FeatureBuilder().fit(batch)            # doctest: +SKIP
    >>> feats = fb.transform(batch)                 # doctest: +SKIP
    >>> feats.claims[["cost_ratio", "los_ratio"]]   # doctest: +SKIP
    """

    def __init__(self, min_peers: int = 20, readmit_days: int = 15, rare_item_share: float = 0.01,
                 implausible_share: float = 0.005, min_support: int = 50, partners: bool = True,
                 max_fit_lines: int = 2_000_000, random_state: int = 0):
        self.min_peers = min_peers
        self.readmit_days = readmit_days
        self.rare_item_share = rare_item_share
        self.implausible_share = implausible_share
        self.min_support = min_support
        self.partners = partners
        self.max_fit_lines = max_fit_lines
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(self, batch, y=None) -> "FeatureBuilder":
        """Learn peer statistics, reference prices and item profiles from ``batch``; returns self."""
        if len(batch.claims) == 0:
            raise ValueError("cannot fit features on a batch without claims")
        return self._fit(_Base(batch))

    def _fit(self, b: _Base) -> "FeatureBuilder":
        categories = np.asarray(b.dx3_values, dtype=object)  # those of the claims, each once
        self.dx_vocab_ = pd.Index(np.sort(categories[categories != ""].astype(str)))
        dx = b.dx_codes(self.dx_vocab_)
        metrics = b.metrics()

        def peers():  # on a second thread: pandas' and NumPy's sorts and group medians release the GIL
            stats_, quantiles_ = [], []
            for key in b.peer_keys(dx):
                frame = metrics.assign(_key=key)[key >= 0]
                stats = robust_location_scale(frame, "_key", _PEER_METRICS, self.min_peers)
                stats_.append(stats)
                quantiles_.append(group_quantiles(frame["log_cost"].to_numpy(), frame["_key"].to_numpy(),
                                                  stats.index.to_numpy(dtype=np.int64), _QS))
            return stats_, quantiles_

        self.peer_stats_ = self.peer_quantiles_ = None  # (their place among the attributes, as saved)
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                peer_job = pool.submit(peers)
                usage = self._fit_catalogue(b, dx, pool)
                self.peer_stats_, self.peer_quantiles_ = peer_job.result()
        except BaseException:
            del self.peer_stats_, self.peer_quantiles_  # not fitted: transform must say so, not read None
            raise
        self._fit_profiles(b, dx, *usage)
        return self

    def _fit_catalogue(self, b: _Base, dx: np.ndarray, pool) -> tuple:
        """Reference prices and item usage; returns the usage counts :meth:`_fit_profiles` reads.
        The drug prices' quantiles are computed on ``pool`` beside the rest (NumPy's sorts release the GIL)."""
        # where a drug's unit price sits among the drug lines of the same diagnosis and care
        drug = (b.kind == DRUG) & (b.price > 0)
        drow = self._context_row(b, dx)[b.cidx[drug]]
        dx_known = drow >= 4
        frame_rows = np.concatenate([drow[dx_known], b.care[b.cidx[drug]]])  # each line counts for both contexts
        frame_vals = np.log(np.concatenate([b.price[drug][dx_known], b.price[drug]]))
        if len(frame_rows) and frame_rows.min() >= 0:  # context rows are small ints: counted directly
            counts = np.bincount(frame_rows)
            keys = np.flatnonzero(counts >= max(self.min_peers, 1))
        else:
            keys, counts = np.unique(frame_rows, return_counts=True)
            keys = keys[counts >= self.min_peers]
        drug_quantiles = (frame_vals, frame_rows, keys, _QS)
        quantile_job = pool.submit(group_quantiles, *drug_quantiles)
        # item catalogue: reference price and usage profiles
        self.code_vocab_ = pd.Index(np.asarray(b.code_values, dtype=object))
        v = len(self.code_vocab_)
        code = b.code_raw.astype(np.int64)
        # reference price: median unit price of the code at providers of the same region and tier
        # (service prices are set per region and hospital level), else same tier, else anywhere
        self.region_vocab_ = pd.Index(np.asarray(pd.unique(b.prov_region_str), dtype=object))
        n_reg = len(self.region_vocab_) if v * len(self.region_vocab_) * 4 <= 20_000_000 else 0
        tier = np.clip(b.tier, 0, 3)[b.cidx]
        self.ref_price_ = _median_table(b.price, code, np.zeros_like(code), v, 1, 1)[:, 0]
        self.ref_price_tier_ = _median_table(b.price, code, tier, v, 4, 5)
        region = codes_in(self.region_vocab_, b.prov_region_str)[b.vcode][b.cidx] if n_reg else None
        self.ref_price_region_ = _median_table(b.price, code, region * 4 + tier, v, n_reg * 4, 5) if n_reg else None
        self.drug_price_rows_ = keys
        self.drug_price_q_ = None  # computed on the pool (its place among the attributes, as saved)
        # drug swapping: each drug's substitutes (billed for the same diagnoses alike) and its premium over them
        pair = distinct(b.cidx[drug].astype(np.int64) * (v + 1) + code[drug])  # counted: their order does not matter
        self.substitutes_ = substitutes(self._context_row(b, dx), pair // (v + 1), pair % (v + 1), self.ref_price_, v,
                                        min_claims=self.min_peers)
        # share of the claims of a context (category×care, and care type alone) billing each code
        # (int64 keys: hashing one column is several times faster than a frame's drop_duplicates / groupby)
        ctx_dx, ctx_care = np.where(dx >= 0, dx * 4 + b.care, -1), -(b.care + 1)
        pair = pd.unique(b.cidx.astype(np.int64) * (v + 1) + code)  # distinct (claim, code), in order of appearance
        claim, pair_code = pair // (v + 1), pair % (v + 1)
        pair_ctx = np.concatenate([ctx_dx[claim], ctx_care[claim]])  # each pair counts in both its contexts
        keep = pair_ctx != -1
        group, found = pd.factorize((pair_ctx[keep] + 5) * (v + 1) + np.concatenate([pair_code, pair_code])[keep])
        use_n = np.bincount(group, minlength=len(found))  # claims of a context billing a code, in order of appearance
        ctx, use_code = found // (v + 1) - 5, found % (v + 1)
        ctx_claims = pd.concat([pd.Series(ctx_dx[ctx_dx >= 0]), pd.Series(ctx_care)]).value_counts()
        share = use_n / ctx_claims.reindex(ctx).to_numpy()
        row = np.where(ctx >= 0, ctx + 4, -ctx - 1)  # care-type-only contexts take rows 0..3
        typical = share >= self.rare_item_share
        n_rows = len(self.dx_vocab_) * 4 + 4
        self.typical_items_ = _PairSet(row[typical], use_code[typical], n_rows, v)
        # the group's core items: billed on at least half of its claims
        core = share >= 0.5
        self.core_items_ = _PairSet(row[core], use_code[core], n_rows, v)
        self.core_count_ = np.bincount(row[core], minlength=n_rows)[:n_rows].astype(float)
        self.drug_price_q_ = done_or_run(quantile_job, group_quantiles, *drug_quantiles)
        return ctx_claims, ctx, use_code, use_n, code

    def _fit_profiles(self, b: _Base, dx: np.ndarray, ctx_claims, ctx, use_code, use_n, code) -> None:
        """Item profiles of diagnosis groups (needs the peer statistics), sex and age profiles, drug rates."""
        # upcoding: each inpatient diagnosis group's item profile and median cost (fraudkit.features._upcoding)
        v = len(self.code_vocab_)
        stats = self.peer_stats_[1]
        groups = ctx_claims.index.to_numpy(dtype=np.int64)  # with their own peer statistics (min_peers stays)
        groups = np.sort(groups[(groups >= 0) & (groups % 4 == INPATIENT) & np.isin(groups, stats.index.to_numpy(dtype=np.int64))])
        self.item_profiles_ = item_profiles(groups, ctx_claims.reindex(groups).to_numpy(), ctx, use_code, use_n,
                                            stats["med_log_cost"].reindex(groups).to_numpy(), v)
        # sex and age profile of each code and diagnosis category
        rng = np.random.default_rng(self.random_state)
        sample = rng.choice(b.m, self.max_fit_lines, replace=False) if b.m > self.max_fit_lines else np.arange(b.m)
        self.code_profile_ = self._profile(code[sample], b.female[b.cidx[sample]], b.age[b.cidx[sample]], v)
        self.dx_profile_ = self._profile(np.where(dx >= 0, dx, -1), b.female, b.age, len(self.dx_vocab_))
        # typical units per day of each drug among its repeat buyers
        _, rate, _ = _drug_rates(b, code)
        self.drug_rate_ = np.zeros(v)
        if len(rate[0]):
            med = pd.Series(rate[0]).groupby(rate[1]).median()
            self.drug_rate_[med.index.to_numpy()] = med.to_numpy()
        # provider peers: admissions per bed by type and tier
        prov = self._provider_base(b)
        frame = pd.DataFrame({"_key": prov["class"], "log_adm": np.log1p(prov["admissions_per_bed"])})[prov["beds"] > 0]
        self.provider_stats_ = robust_location_scale(frame, "_key", {"log_adm": 0.05}, 5)
        self.n_features_in_ = len(CLAIM_COLUMNS)

    def _line_codes(self, b: _Base) -> np.ndarray:
        """Each item line's code in the fit-time vocabulary (-1 = unseen)."""
        if not b.m:
            return np.empty(0, np.int64)
        cached = getattr(b, "_vocab_codes", None)
        if cached is None:
            cached = codes_in(self.code_vocab_, pd.Series(np.asarray(b.code_values, dtype=object), dtype="str"))[b.code_raw]
            b._vocab_codes = cached
        return cached

    def _context_row(self, b: _Base, dx: np.ndarray) -> np.ndarray:
        """Row of a claim's diagnosis×care context: 4 + category×4 + care; rows 0..3 = care type only."""
        return np.where(dx >= 0, dx * 4 + b.care + 4, b.care)

    def _context(self, b: _Base, dx: np.ndarray) -> np.ndarray:
        """Context for item typicality: category×care where known, else care type (negative keys)."""
        return np.where(dx >= 0, dx * 4 + b.care, -(b.care + 1))

    def _profile(self, code, female, age, size) -> pd.DataFrame:
        ok = code >= 0
        frame = pd.DataFrame({"code": code[ok], "female": female[ok].astype(float), "age": age[ok]})
        g = frame.groupby("code", sort=True)
        prof = pd.DataFrame({"n": g.size(), "female": g["female"].mean(),
                             "age_lo": g["age"].quantile(0.005), "age_hi": g["age"].quantile(0.995)}).reindex(np.arange(size))
        # per code: implausible for a man, for a woman, and the plausible age range (± 5 years)
        trusted = prof["n"].fillna(0).to_numpy() >= self.min_support
        female = prof["female"].to_numpy()
        return {"bad_male": trusted & (1.0 - female < self.implausible_share),
                "bad_female": trusted & (female < self.implausible_share),
                "age_lo": np.where(trusted, prof["age_lo"].to_numpy() - 5, -np.inf),
                "age_hi": np.where(trusted, prof["age_hi"].to_numpy() + 5, np.inf)}

    # ------------------------------------------------------------------ transform
    def transform(self, batch, parts: int = 1) -> Features:
        """Feature tables of ``batch`` computed with the learned references.

        ``parts`` > 1: the batch is cut into parts by patient (:func:`fraudkit.io.split_by_patient`),
        the features of each part computed on their own (:meth:`part_features`) and put together
        (:meth:`combine`): the same tables, bit for bit, for any number of parts.
        """
        check_is_fitted(self, "peer_stats_")
        if int(parts) != parts or parts < 1:
            raise ValueError(f"parts must be a whole number of at least 1, got {parts!r}")
        if parts > 1:
            return self.combine([self.part_features(part) for part in split_by_patient(batch, parts)])
        return self._transform(_Base(batch, lines=False))  # item lines are read chunk by chunk, never all at once

    def part_features(self, part) -> "PartFeatures":
        """The features of one part of a batch cut by patient (a :class:`fraudkit.io.BatchPart`) that
        its own claims decide, and the keys :meth:`combine` counts over every part.

        A claim's features read its patient's other claims (stays, readmissions, supply windows:
        all in its part) and counts over other patients' claims at its provider or in its peer
        class (cohorts, same-day diagnoses, exam patterns, drug lifts, cards buying together):
        those are computed again by :meth:`combine` from every part's keys, as are the providers'.
        """
        check_is_fitted(self, "peer_stats_")
        b = _Base(part.batch, lines=False)
        claims, patients = self._transform(b, whole=False)
        return PartFeatures(part.claims, part.patients, _id_index(b.claim_id, "claim_id"), claims, patients, _Keys.of(b, part))

    def combine(self, parts: list["PartFeatures"]) -> Features:
        """The feature tables of a whole batch from those of its parts (:meth:`part_features`), in any order:
        claims and patients in the whole batch's order, the counts over all parts' keys, the providers
        from all claims (the same bits as :meth:`transform` of the whole batch)."""
        if not parts:
            raise ValueError("no parts to combine")
        m = _Merged(parts)
        names = parts[0].columns.names  # every claim column, or those of slim parts (PartFeatures.slim)
        claims = _Columns(m.n, [name for name in CLAIM_COLUMNS if name in names or name in CROSS_COLUMNS])
        rows = [claims._row(name) for name in names]
        block = claims._data if rows == list(range(len(claims.names))) else None  # all of them: no row index
        with ThreadPoolExecutor(max_workers=1) as pool:  # as in _transform: a second core where the GIL allows
            co_purchase = pool.submit(self._co_purchase, m)  # beside the parts' columns and the other counts
            for part in parts:
                if part.columns.names != names:
                    raise ValueError("parts to combine must have the same claim columns")
                if block is not None:
                    block[:, part.claims] = part.columns._data
                else:
                    claims._data[np.ix_(rows, part.claims)] = part.columns._data
                claims._written[rows] |= part.columns._written
            for col, values in self._cross(m, co_purchase).items():  # counts over every part's claims
                claims[col] = values
            order = np.argsort(np.concatenate([part.patients for part in parts]), kind="stable")
            patients = pd.concat([part.patient_table for part in parts]).iloc[order]
            patients["co_purchase_days"] = group_max(m.pcode, claims["co_purchase_days"], m.n_pat, fill=0.0)
            supply = patients["supply_ratio"].to_numpy()[m.pcode]
            # the significances beside the rest of the providers' table
            significance = pool.submit(self._mean_significance, m, claims.arrays(), supply, self._provider_class(m))
            providers = self._providers(m, claims, patients, significance.result)
        index = parts[0].claim_index.append([part.claim_index for part in parts[1:]]).take(m.claim_order)
        return Features(claims=claims.frame(index), patients=patients[list(PATIENT_COLUMNS)],
                        providers=providers[list(PROVIDER_COLUMNS)])

    def _cross(self, b: _Base, co_purchase: Future | None = None) -> dict[str, np.ndarray]:
        """The claim columns that count over other patients' claims (:data:`CROSS_COLUMNS`; see
        :meth:`part_features`); ``co_purchase``: the future of :meth:`_co_purchase`, if already started."""
        out = dict(zip(("cohort_size", "cohort_lift", "same_day_dx_lift"), _together(b)))
        out.update(self._exam_patterns(b))
        out["co_purchase_days"] = self._co_purchase(b) if co_purchase is None else co_purchase.result()
        return out

    def _transform(self, b: _Base, whole: bool = True):
        """The feature tables of ``b``; ``whole=False`` (a part of a batch): the claims' columns and the
        patients' table only, without the providers' (:meth:`combine` computes them from every part)."""
        if b.n == 0 and not whole:  # a part whose patients have no claims: their rows of the patients' table
            claims = _Columns(0, CLAIM_COLUMNS)
            for col in CLAIM_COLUMNS:
                claims[col] = np.zeros(0)
            return claims, self._patients(b, claims, np.zeros(b.n_pat))
        dx = b.dx_codes(self.dx_vocab_)
        with ThreadPoolExecutor(max_workers=1) as pool:  # a second core for columns that need only the lines
            claims, supply, exam_job = self._claims(b, dx, pool, cross=whole)
            if not whole:  # a part: the columns counted over every part are computed by combine
                for col in CROSS_COLUMNS:
                    claims[col] = np.nan
            # each claim: the fastest rate, against its usual rate, at which its patient buys one of its drugs (resale)
            pair_patient, ratio, line_pair = supply
            per_buy = ratio[np.maximum(line_pair, 0)] if len(ratio) else np.zeros(len(line_pair))
            claims["drug_oversupply"] = group_max(b.line_features.drug_buys[0], np.where(line_pair >= 0, per_buy, 0.0), b.n, fill=0.0)
            supply_ratio = group_max(pair_patient, ratio, b.n_pat, fill=0.0)  # the patients' column
            # the significances of the providers' means queue behind the exam patterns, beside the patients' features
            job = (b, claims, exam_job, supply_ratio[b.pcode])
            significance = pool.submit(self._mean_significance_job, *job) if whole else None
            patients = self._patients(b, claims, supply_ratio)
            for col, values in (exam_job.result() if whole else {}).items():
                claims[col] = values
            for col, src in (("patient_supply_ratio", "supply_ratio"), ("patient_providers_90d", "providers_per_90d"),
                             ("patient_pharmacies_90d", "pharmacies_per_90d"), ("patient_max_claims_30d", "max_claims_30d")):
                claims[col] = patients[src].to_numpy()[b.pcode]
            if not whole:
                return claims, patients
            providers = self._providers(b, claims, patients, lambda: done_or_run(significance, self._mean_significance_job, *job))
        return Features(claims=claims.frame(_id_index(b.claim_id, "claim_id")),
                        patients=patients[list(PATIENT_COLUMNS)], providers=providers[list(PROVIDER_COLUMNS)])

    def fit_transform(self, batch, y=None) -> Features:
        """``fit(batch).transform(batch)``, the batch's column arrays built once."""
        if len(batch.claims) == 0:
            raise ValueError("cannot fit features on a batch without claims")
        b = _Base(batch)
        self._fit(b)
        b.drop_lines()  # fitting's copy of every line's columns; transform reads the lines chunk by chunk
        return self._transform(b)

    # ---------------------------------------------------------------- claims
    def _claims(self, b: _Base, dx: np.ndarray, pool, cross: bool = True) -> tuple[_Columns, tuple, Future | None]:
        """The claim features but the exam-pattern columns, the patients' drug supply (:meth:`_drug_supply`),
        and the future of the exam-pattern columns (:meth:`_exam_patterns`). The supply, the co-purchases
        and the exam patterns are computed on ``pool``, in that order, beside the rest once the lines are reduced;
        the item lines are reduced on ``pool`` too, beside the peer comparisons."""
        n = b.n
        level = np.full(n, 3, dtype=np.int64)
        row = np.full(n, -1, dtype=np.int64)
        for lv, key in reversed(list(enumerate(b.peer_keys(dx)))):
            found = self.peer_stats_[lv].index.get_indexer(key) if len(self.peer_stats_[lv]) else np.full(n, -1)
            hit = (key >= 0) & (found >= 0)
            level[hit], row[hit] = lv, found[hit]
        # item lines against the learned references, reduced per claim chunk by chunk (fraudkit.features._lines),
        # on the pool while this thread compares each claim with its peers
        ctx = self._context(b, dx)
        ctx = np.where((dx >= 0) & (level >= 2), -(b.care + 1), ctx)  # unknown or thin category: care type only
        ctx_row = np.where(ctx >= 0, ctx + 4, -ctx - 1)

        def reduce_lines():
            b.line_features = line_features(self, b, b.line_source, dx, ctx_row, _implausible)
            return b.line_features

        # the pool has one worker: what follows the lines starts when they are done
        line_job = pool.submit(reduce_lines)
        supply_job = pool.submit(self._drug_supply, b)
        # family cards and card pools: the same drug bought with another card, same place and day, on several days
        co_purchase = pool.submit(self._co_purchase, b) if cross else None
        exam_job = pool.submit(self._exam_patterns, b) if cross else None
        metrics = b.metrics()
        out = _Columns(n, CLAIM_COLUMNS)
        out["peer_level"] = level.astype(float)

        # each claim's row in the peer tables of all levels laid end to end (the last row: none)
        sizes = [len(stats) for stats in self.peer_stats_]
        flat = np.where(row >= 0, np.cumsum([0] + sizes)[:4][level] + row, sum(sizes))

        def peer(col: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
            med = np.concatenate([stats[f"med_{metric}"].to_numpy(dtype=float) for stats in self.peer_stats_] + [[np.nan]])[flat]
            scale = np.concatenate([stats[f"scale_{metric}"].to_numpy(dtype=float) for stats in self.peer_stats_] + [[1.0]])[flat]
            x = metrics[metric].to_numpy()
            if np.isnan(med).any():  # a care type unseen at fit: the median of the fitted care types' medians
                fallback = np.nanmedian(self.peer_stats_[3][f"med_{metric}"].to_numpy(dtype=float)) if len(self.peer_stats_[3]) else 0.0
                med = np.where(np.isnan(med), 0.0 if np.isnan(fallback) else fallback, med)
            return med, np.clip((x - med) / scale, -50, 50)

        med_cost, out["cost_z"] = peer("cost", "log_cost")
        out["cost"] = b.total
        out["peer_median_total"] = np.round(np.expm1(med_cost), 2)
        out["cost_ratio"] = b.total / np.maximum(np.expm1(med_cost), 0.01)
        pct = np.full(n, 0.5)
        for lv in range(4):
            sel = (level == lv) & (row >= 0)
            pct[sel] = _share_below(self.peer_quantiles_[lv], row[sel], metrics["log_cost"].to_numpy()[sel])
        out["cost_pct"] = pct
        med_los, out["los_z"] = peer("los", "los")
        out["los"] = b.los
        out["los_ratio"] = np.where(med_los > 0, b.los / np.maximum(med_los, 1e-9), 1.0)
        out["lines"] = b.lines
        _, out["lines_z"] = peer("lines", "lines")
        out["drug_share"] = b.drug_share
        _, out["drug_share_z"] = peer("drug_share", "drug_share")
        out["exam_share"] = b.exam_share
        _, out["exam_share_z"] = peer("exam_share", "exam_share")
        _, out["drug_cost_z"] = peer("drug", "log_drug")
        out["eligible_share"] = metrics["eligible_share"].to_numpy()
        _, out["eligible_share_z"] = peer("eligible_share", "eligible_share")
        out["lines_per_day"] = metrics["lines_per_day"].to_numpy()
        _, out["lines_per_day_z"] = peer("lines_per_day", "lines_per_day")
        out["dup_lines"] = b.dup_lines
        out["dup_share"] = b.dup_lines / np.maximum(b.lines, 1)
        # bed hanging: stay days without daily lines; the card used elsewhere during the stay
        inpat = b.care == INPATIENT
        out["empty_days"] = np.where(inpat, np.maximum(b.cal_days - b.active_days, 0), 0.0)
        out["empty_day_share"] = out["empty_days"] / b.cal_days
        key, by_day, s, patient_day = b.patient_days()
        stay = np.flatnonzero(inpat & (b.los >= 2))
        lo, hi = key[stay] + 1, b.pcode[stay] * 1_000_000 + (b.discharge[stay] - b.admit.min())
        during = np.zeros(n)
        during[stay] = np.maximum(np.searchsorted(s, hi, side="left") - np.searchsorted(s, lo, side="left"), 0)
        # minus the patient's claims at the same provider (outpatient visits of the same hospital)
        vkey = (b.pcode * b.n_prov + b.vcode).astype(np.int64) * 1_000_000 + (b.admit - b.admit.min())
        sv = np.sort(vkey)
        vlo = vkey[stay] + 1
        vhi = (b.pcode[stay] * b.n_prov + b.vcode[stay]).astype(np.int64) * 1_000_000 + (b.discharge[stay] - b.admit.min())
        during[stay] -= np.maximum(np.searchsorted(sv, vhi, side="left") - np.searchsorted(sv, vlo, side="left"), 0)
        out["claims_during_stay"] = during
        # readmission for the same category within readmit_days
        dxk = b.dx3_code
        blank = np.asarray(b.dx3_values, dtype=object) == ""  # per category code
        idx = np.flatnonzero(inpat)
        order = idx[np.lexsort((b.admit[idx], dxk[idx], b.pcode[idx]))]
        same = (b.pcode[order][1:] == b.pcode[order][:-1]) & (dxk[order][1:] == dxk[order][:-1]) & ~blank[dxk[order][1:]]
        gap = b.admit[order][1:] - b.discharge[order][:-1]
        re = same & (gap <= self.readmit_days) & (gap >= 0)
        readmit, readmitted = np.zeros(n), np.zeros(n)
        readmit[order[1:][re]] = 1.0
        readmitted[order[:-1][re]] = 1.0
        out["readmit_15d"], out["readmitted_15d"] = readmit, readmitted
        same_provider = re & (b.vcode[order][1:] == b.vcode[order][:-1])
        split = np.zeros(n)
        split[order[1:][same_provider]] = 1.0
        split[order[:-1][same_provider]] = 1.0
        out["split_stay"] = split
        if cross:
            out["cohort_size"], out["cohort_lift"], out["same_day_dx_lift"] = _together(b)
        out["weekend"] = (((b.admit + 3) % 7) >= 5).astype(float)  # 1970-01-01 was a Thursday
        out["out_of_region"] = (b.region_p != b.region_v).astype(float)
        out["regions_same_day"] = distinct_per(patient_day, b.region_v, coded=True, order=by_day) - 1
        out["providers_same_day"] = distinct_per(patient_day, b.vcode, coded=True, order=by_day) - 1
        lf = line_job.result()  # the columns above need no item lines: computed while they are reduced
        # prices against the learned catalogue reference
        out["price_ratio_max"] = np.maximum(lf.price_ratio_max, 1.0)
        out["overprice_share"] = lf.overpriced / np.maximum(b.item_total, 0.01)
        # drug prices against the drugs billed for the same diagnosis and care
        out["drug_price_pct"] = np.where(lf.drug_money > 0, lf.drug_pct_money / np.maximum(lf.drug_money, 1e-9), 0.5)
        # items atypical for the diagnosis
        out["atypical_share"] = lf.atypical / np.maximum(b.item_total, 0.01)
        # core items of the group missing from the claim: a diagnosis richer than the items support
        n_core = self.core_count_[ctx_row]
        out["core_missing_share"] = np.where(n_core > 0, 1.0 - lf.core_present / np.maximum(n_core, 1), 0.0)
        if cross:
            out["co_purchase_days"] = done_or_run(co_purchase, self._co_purchase, b)  # here if the pool is still busy
        # implausible for sex or age
        out["implausible_lines"] = b.line_features.implausible
        out["implausible_dx"] = _implausible(self.dx_profile_, dx, b.female, b.age).astype(float)
        # upcoding: a cheaper diagnosis group explains the stay's items better than the one billed
        profiles = getattr(self, "item_profiles_", None)  # models fitted before it have none: 0
        stay_group = np.where((dx >= 0) & (b.care == INPATIENT), dx * 4 + b.care, -1)
        out["cheaper_dx_llr"] = (np.zeros(n) if profiles is None else
                                 cheaper_group_llr(profiles, stay_group, *b.line_features.stay_pairs, n))
        return out, supply_job.result(), exam_job

    def _co_purchase(self, b: _Base) -> np.ndarray:
        """Each claim's days on which its drugs were bought with other cards too (fraudkit.features._copurchase)."""
        return co_purchase_days(*b.line_features.drug_buys[:2], b.pcode, b.vcode, b.admit)

    def _exam_patterns(self, b: _Base) -> dict[str, np.ndarray]:
        """Exam sets and drug lines billed here far more than at peer providers (claim columns)."""
        n, out = b.n, {}
        cls = b.ptype * 4 + np.clip(b.tier, 0, 3)
        has = b.exam_sig >= 0
        v, c = b.vcode[has].astype(np.int64), cls[has].astype(np.int64)
        sig = pd.factorize(b.exam_sig[has])[0].astype(np.int64)
        n_vs, n_v = count_by(v * (sig.max() + 1 if len(sig) else 1) + sig), count_by(v)
        n_cs, n_c = count_by(c * (sig.max() + 1 if len(sig) else 1) + sig), count_by(c)
        # the provider's own claims are left out of the expectation
        expected = n_v * (n_cs - n_vs) / np.maximum(n_c - n_v, 1.0)
        claims, lift = np.zeros(n), np.ones(n)
        claims[has] = n_vs
        lift[has] = (n_vs + 1.0) / (expected + 1.0)
        out["exam_pattern_claims"], out["exam_pattern_lift"] = claims, lift
        claim, code = b.line_features.exam_pairs  # one row per (claim, exam code)
        out["exam_line_lift"] = _code_lift(b, claim, code, cls, len(b.code_values) + 1)
        # drug swapping: a dear code billed in place of the cheap one is billed here far more than at peers
        claim, code, _ = b.line_features.drug_buys
        ncode = len(self.code_vocab_) + 1
        pair = distinct(claim * ncode + code)
        out["drug_line_lift"] = _code_lift(b, pair // ncode, pair % ncode, cls, ncode)
        # ... and a dear drug billed here far more often among its substitutes than at peers (fraudkit.features._swap)
        subs = getattr(self, "substitutes_", None)  # models fitted before it have none: 1
        out["drug_swap_lift"] = np.ones(n) if subs is None else swap_lift(subs, *b.line_features.drug_pairs, b.vcode, cls, n)
        return out

    # ---------------------------------------------------------------- patients
    def _drug_supply(self, b: _Base) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each (patient, drug) pair bought repeatedly outside stays: its patient, its rate of buying
        over the drug's usual rate (learned at fit), and each drug purchase's pair (-1: none)."""
        pair_patient, rate, _, line_pair = _drug_rates_of(b, *b.line_features.drug_buys, line_pairs=True)
        usual = self.drug_rate_[rate[1]]
        ratio = np.nan_to_num(rate[0] / np.where(usual > 0, usual, np.inf)) if len(rate[0]) else np.zeros(0)
        return pair_patient, ratio, line_pair

    def _patients(self, b: _Base, claims: _Columns, supply_ratio: np.ndarray) -> pd.DataFrame:
        P, pc = b.n_pat, b.pcode
        cnt = np.bincount(pc, minlength=P).astype(float)
        first = np.full(P, np.iinfo(np.int64).max)
        last = np.full(P, np.iinfo(np.int64).min)
        np.minimum.at(first, pc, b.admit) if b.n < 50_000 else _reduce(first, pc, b.admit, "min")
        np.maximum.at(last, pc, b.discharge) if b.n < 50_000 else _reduce(last, pc, b.discharge, "max")
        span = np.where(cnt > 0, last - first + 1, 0).astype(float)
        out = pd.DataFrame({"claims": cnt, "span_days": span}, index=_id_index(b.patient_ids, "patient_id"))
        out["claims_per_30d"] = cnt * 30 / np.maximum(span, 30)
        _, by_day, _, patient_day = b.patient_days()  # sorted by patient too
        out["max_claims_30d"] = group_max(pc, window_counts(pc, b.admit, 30, order=by_day), P, fill=0.0, order=by_day)
        p, v, _ = b.visit_pairs()
        pharmacy = (b.prov_type_all == 2)[v]
        out["providers_per_90d"] = np.bincount(p, minlength=P)[:P] * 90 / np.maximum(span, 90)
        out["pharmacies_per_90d"] = np.bincount(p[pharmacy], minlength=P)[:P] * 90 / np.maximum(span, 90)
        out["doctors_per_90d"] = group_nunique(pc, b.doctor, P) * 90 / np.maximum(span, 90)
        outside = b.care != INPATIENT
        drug_days = group_sum(pc[outside], b.drug_qty[outside], P)
        out["drug_days"] = drug_days
        out["supply_ratio"] = supply_ratio
        # days on which the card was used in more than one region (one count per patient-day)
        first = np.zeros(b.n, bool)
        first[by_day[np.r_[True, np.diff(patient_day[by_day]) != 0][: b.n]]] = True
        out["distant_days"] = group_sum(pc[first & (claims["regions_same_day"] > 0)], 1.0, P)
        out["stay_overlaps"] = group_sum(pc, claims["claims_during_stay"], P)
        out["out_of_region_share"] = group_sum(pc, claims["out_of_region"], P) / np.maximum(cnt, 1)
        out["implausible_lines"] = group_sum(pc, claims["implausible_lines"], P)
        out["co_purchase_days"] = group_max(pc, claims["co_purchase_days"], P, fill=0.0, order=by_day)
        out["fund_paid"] = group_sum(pc, b.fund, P)
        return out

    # ---------------------------------------------------------------- providers
    @staticmethod
    def _provider_class(b: _Base) -> np.ndarray:
        return b.prov_type_all * 4 + np.clip(b.prov_tier_all, 0, 3)

    def _provider_base(self, b: _Base) -> dict[str, np.ndarray]:
        V, vc = b.n_prov, b.vcode
        period = max(float(b.discharge.max() - b.admit.min() + 1), 1.0) if b.n else 1.0
        adm = np.bincount(vc[b.care == INPATIENT], minlength=V)[:V].astype(float)
        beds = b.prov_beds_all
        return {"class": self._provider_class(b), "beds": beds,
                "admissions": adm, "admissions_per_bed": np.where(beds > 0, adm / np.maximum(beds, 1) * 30 / period, 0.0)}

    def _mean_significance_job(self, b: _Base, claims: _Columns, exam_job: Future, supply: np.ndarray):
        """The significances of the providers' means (:meth:`_mean_significance`), from the claim columns
        they read: all written when the job is queued but the exam patterns', whose job runs before it
        on the one-worker pool."""
        cols = {**claims.arrays(), **exam_job.result()}
        return self._mean_significance(b, cols, supply, self._provider_class(b))

    def _providers(self, b: _Base, claims: _Columns, patients: pd.DataFrame, mean_significance) -> pd.DataFrame:
        """The provider features; ``mean_significance()`` gives the significances of their means
        (:meth:`_mean_significance_job`, computed on a pool beside the rest: pandas' group medians release the GIL)."""
        V, vc = b.n_prov, b.vcode
        base = self._provider_base(b)
        supply = patients["supply_ratio"].to_numpy()[b.pcode]
        cnt = np.bincount(vc, minlength=V)[:V].astype(float)
        out = pd.DataFrame({"peer_group": base["class"].astype(float), "tier": b.prov_tier_all.astype(float),
                            "beds": base["beds"], "claims": cnt},
                           index=_id_index(b.provider_ids, "provider_id"))
        pair_patient, pair_provider, _ = b.visit_pairs()  # each distinct (patient, provider) pair
        out["patients"] = np.bincount(pair_provider, minlength=V)[:V].astype(float)
        doc = b.doctor >= 0
        doctor_pairs = pair_counts(vc[doc], b.doctor[doc])  # (provider, doctor): how many of its doctors, and their shares
        out["doctors"] = np.bincount(doctor_pairs[0], minlength=V)[:V].astype(float)
        out["fund_paid"] = group_sum(vc, b.fund, V)
        out["claims_per_patient"] = cnt / np.maximum(out["patients"].to_numpy(), 1)
        out["admissions_per_bed"] = base["admissions_per_bed"]
        stats = self.provider_stats_
        found = stats.index.get_indexer(base["class"]) if len(stats) else np.full(V, -1)
        med = np.where(found >= 0, stats["med_log_adm"].to_numpy()[np.maximum(found, 0)] if len(stats) else 0.0, 0.0)
        scale = np.where(found >= 0, stats["scale_log_adm"].to_numpy()[np.maximum(found, 0)] if len(stats) else 1.0, 1.0)
        out["admission_rate_z"] = np.where((base["beds"] > 0) & (found >= 0),
                                           np.clip((np.log1p(base["admissions_per_bed"]) - med) / scale, -50, 50), 0.0)
        col = claims.__getitem__
        inpat = (b.care == INPATIENT)
        n_in = np.maximum(np.bincount(vc[inpat], minlength=V)[:V], 1)

        def mean(values, sel=None):
            # shrunk towards the batch-wide mean by PRIOR_CLAIMS pseudo-claims, so that a provider
            # with a handful of claims does not look extreme by chance
            values = np.asarray(values, dtype=float)
            if sel is not None:
                return (group_sum(vc[sel], values[sel], V) + PRIOR_CLAIMS * (values[sel].mean() if sel.any() else 0.0)) / (
                    np.bincount(vc[sel], minlength=V)[:V] + PRIOR_CLAIMS)
            return (group_sum(vc, values, V) + PRIOR_CLAIMS * (values.mean() if len(values) else 0.0)) / (cnt + PRIOR_CLAIMS)

        out["cost_z_mean"] = mean(col("cost_z"))
        out["los_z_mean"] = mean(col("los_z"), inpat)
        out["empty_day_share"] = mean(col("empty_day_share"), inpat)
        out["cohort_lift_mean"] = np.where(n_in > 0, mean(col("cohort_lift"), inpat), 1.0)
        out["dup_share"] = group_sum(vc, col("dup_lines"), V) / np.maximum(group_sum(vc, b.lines, V), 1)
        money = np.maximum(group_sum(vc, b.item_total, V), 0.01)
        out["overprice_share"] = group_sum(vc, col("overprice_share") * b.item_total, V) / money
        out["atypical_share"] = group_sum(vc, col("atypical_share") * b.item_total, V) / money
        out["drug_cost_z_mean"] = mean(col("drug_cost_z"))
        out["split_stay_share"] = mean(col("split_stay"), inpat)
        out["core_missing_mean"] = mean(col("core_missing_share"), inpat)
        out["group_claim_share"] = mean((col("same_day_dx_lift") > 2).astype(float))
        out["exam_line_lift_mean"] = mean(col("exam_line_lift"))
        out["weekend_share"] = mean(col("weekend"))
        out["out_of_region_share"] = mean(col("out_of_region"))
        away = col("out_of_region") > 0
        if away.any():
            v, _, k = pair_counts(vc[away], b.region_p[away])
            out["top_region_share"] = group_max(v, k, V) / np.maximum(np.bincount(vc[away], minlength=V)[:V], 1)
        else:
            out["top_region_share"] = 0.0
        v, _, k = doctor_pairs
        share = k / np.maximum(np.bincount(vc[doc], minlength=V)[:V], 1)[v]
        out["top_doctor_share"], out["doctor_hhi"] = group_max(v, share, V), group_sum(v, share ** 2, V)
        out["patient_supply_ratio_mean"] = mean(supply)
        high = patients["supply_ratio"].to_numpy()[pair_patient] > 2
        out["high_supply_patients"] = np.bincount(pair_provider[high], minlength=V)[:V].astype(float)
        out["patient_providers_mean"] = mean(patients["providers_per_90d"].to_numpy()[b.pcode])
        out["partner_share"], out["partner_lift"] = self._partners(b, out["patients"].to_numpy()) if self.partners else (0.0, 0.0)
        # shares of claims in a suspicious tail (a scheme touches a share of an actor's claims, which
        # a mean over all of them dilutes), each also as its significance
        flags = _claim_flags(claims.arrays(), b, supply)
        for name, (flag, sel) in flags.items():
            out[name] = mean(flag.astype(float), sel)
        for name, values in {**self._share_significance(b, flags, base["class"]), **mean_significance()}.items():
            out[name] = values
        return out

    #: provider mean column -> (claim-level measure, whether it averages over inpatient claims only)
    _MEAN_MEASURES = {
        "cost_z_mean": lambda c: (c["cost_z"], False),
        "los_z_mean": lambda c: (c["los_z"], True),
        "drug_cost_z_mean": lambda c: (c["drug_cost_z"], False),
        "exam_line_lift_mean": lambda c: (np.log(np.maximum(c["exam_line_lift"], 1e-3)), False),
        "core_missing_mean": lambda c: (c["core_missing_share"], True),
    }

    def _share_significance(self, b: _Base, flags: dict, klass: np.ndarray) -> dict[str, np.ndarray]:
        """``*_sig`` columns of the providers' shares of flagged claims (by name); see :meth:`_mean_significance`."""
        vc, fallback = b.vcode, np.maximum(b.prov_type_all, 0)
        klass = np.maximum(klass, 0)
        out = {}
        for name, (flag, sel) in flags.items():
            rows = np.ones(b.n, bool) if sel is None else np.asarray(sel)
            out[name.replace("_share", "_sig")] = binomial_excess_z(vc[rows], np.asarray(flag)[rows], klass, fallback)
        return out

    def _mean_significance(self, b: _Base, cols: dict, supply: np.ndarray, klass: np.ndarray) -> dict[str, np.ndarray]:
        """``*_sig`` columns of the providers' means (by name). With :meth:`_share_significance`: how
        far each provider's share or mean is beyond chance, as a z.

        A share of claims is judged against the pooled rate of the provider's class (type ×
        tier, else type) in the same batch, by the exact binomial tail of its count (a funnel
        plot); a mean by the Stouffer z of its claims' standardised values. Both grow with
        the number of claims behind them, so a small provider's one odd claim does not
        outrank a large provider's hundred (provider precision@k of the forest on default /
        hard 300k: 0.62 / 0.60 on the shrunk shares, 0.76 / 0.68 on these).
        """
        vc, fallback = b.vcode, np.maximum(b.prov_type_all, 0)
        klass = np.maximum(klass, 0)
        out = {}
        means = {**{name: make(cols) for name, make in self._MEAN_MEASURES.items()},
                 "patient_supply_ratio_mean": (np.log1p(supply), False)}
        for inpatient in (False, True):  # the measures over the same claims, standardised in one grouping
            names = [name for name, (_, only_in) in means.items() if only_in == inpatient]
            rows = b.care == INPATIENT if inpatient else np.ones(b.n, bool)
            z = stouffer_excess_z(vc[rows], np.column_stack([np.asarray(means[name][0], dtype=float)[rows] for name in names]),
                                  klass, fallback)
            for j, name in enumerate(names):
                out[name.replace("_mean", "_sig")] = z[:, j]
        return out

    def _partners(self, b: _Base, n_patients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each provider, the other provider sharing the largest share of its patients."""
        V = b.n_prov
        p, v, _ = b.visit_pairs()
        deg = np.bincount(p, minlength=b.n_pat)[p]
        keep = (deg > 1) & (deg <= 40)  # very mobile patients say little about one pair
        share, lift = np.zeros(V), np.zeros(V)
        if not keep.any():
            return share, lift
        m = sp.csr_matrix((np.ones(int(keep.sum())), (p[keep], v[keep])), shape=(b.n_pat, V))
        shared = (m.T @ m).tocoo()
        a, c, k = shared.row, shared.col, shared.data
        sel = (a != c) & (k >= 5)
        a, c, k = a[sel], c[sel], k[sel]
        if len(a) == 0:
            return share, lift
        na, nc = n_patients[a], n_patients[c]
        pair_share = k / np.maximum(na, 1)
        pair_lift = k / (na * nc / max(b.n_pat, 1) + 1.0)
        order = np.lexsort((pair_lift, a))
        last = order[np.r_[a[order][1:] != a[order][:-1], True]]  # the top partner by lift
        share[a[last]], lift[a[last]] = pair_share[last], pair_lift[last]
        return share, lift


@dataclass
class _Keys:
    """What :meth:`FeatureBuilder.combine` needs of a part's claims beyond their feature columns: the keys
    counted over every part and the columns the providers' features sum. Claims and patients are
    positions in the whole batch; diagnoses, doctors, regions and item codes are codes into this
    part's own values (``*_values``), put on common codes by :class:`_Merged`."""

    claim: dict  # per claim, global codes: vcode, pcode, admit, discharge, los, care, exam_sig, fund, lines, ...
    coded: dict  # name -> (per claim code, the part's values)
    exam_pairs: tuple  # (claim position in the whole batch, item code into code_values)
    drug_buys: tuple
    drug_pairs: tuple
    code_values: pd.Index
    provider: dict  # the providers' ids, type, tier and beds (every part has them all)

    _CLAIM = ("vcode", "admit", "discharge", "los", "care", "exam_sig", "fund", "lines", "item_total", "drug_amount")

    @classmethod
    def of(cls, b: _Base, part) -> "_Keys":
        at = np.asarray(part.claims)
        claim = {name: getattr(b, name) for name in cls._CLAIM}
        claim["pcode"] = np.asarray(part.patients)[b.pcode]
        coded = {"dx3_code": (b.dx3_code, b.dx3_values), "doctor": (b.doctor, b.doctor_values),
                 "region_p": (b.region_p, b.region_values)}
        lf = getattr(b, "line_features", None)  # none: a part without claims
        none = np.zeros(0, np.int64)
        exam, buys, drugs = (lf.exam_pairs, lf.drug_buys, lf.drug_pairs) if lf is not None else (
            (none, none), (none, none, np.zeros(0)), (none, none))
        claim_at = lambda pairs: (at[pairs[0]], *pairs[1:])  # noqa: E731
        provider = {"ids": b.provider_ids, "type": b.prov_type_all, "tier": b.prov_tier_all, "beds": b.prov_beds_all}
        return cls(claim, coded, claim_at(exam), claim_at(buys), claim_at(drugs), b.code_values, provider)


@dataclass
class PartFeatures:
    """:meth:`FeatureBuilder.part_features` of one part of a batch: its claims' and patients' positions
    in the whole batch, its claims' ids, their feature columns (those counted over other parts not yet
    final), its patients' table, and the keys :meth:`FeatureBuilder.combine` needs."""

    claims: np.ndarray
    patients: np.ndarray
    claim_index: pd.Index
    columns: _Columns
    patient_table: pd.DataFrame
    keys: _Keys

    def slim(self, keep: tuple = ()) -> "PartFeatures":
        """This part with only the claim columns :meth:`FeatureBuilder.combine` reads
        (:data:`PROVIDER_INPUTS`, :data:`CROSS_COLUMNS`) and ``keep``: what a cluster's worker sends
        back, while the whole claim table stays with it."""
        wanted = set(PROVIDER_INPUTS) | set(CROSS_COLUMNS) | set(keep)
        names = [name for name in self.columns.names if name in wanted]
        cols = _Columns(len(self.claims), names)
        for name in names:
            cols[name] = self.columns[name]
        return PartFeatures(self.claims, self.patients, self.claim_index, cols, self.patient_table, self.keys)


def _common_codes(coded: list[tuple[np.ndarray, object]]) -> tuple[list[np.ndarray], pd.Index]:
    """Codes into each part's own values (-1: none) as codes into the values of all parts."""
    values = [np.asarray(v, dtype=object) for _, v in coded]
    common, uniques = pd.factorize(np.concatenate(values) if values else np.zeros(0, object))
    out, start = [], 0
    for (code, _), v in zip(coded, values):
        table = common[start:start + len(v)]
        start += len(v)
        out.append(np.where(code >= 0, table[np.maximum(code, 0)], -1) if len(table) else np.full(len(code), -1))
    return out, pd.Index(uniques)


class _Merged(_Base):
    """The columns of a whole batch that :meth:`FeatureBuilder.combine` reads, put together from its
    parts' keys: per claim in the whole batch's order, so sums over claims add in the same order."""

    def __init__(self, parts: list[PartFeatures]):  # noqa: PLW0231 (a _Base made of parts, not of a batch)
        keys = [part.keys for part in parts]
        at = [part.claims for part in parts]
        self.n = n = int(sum(len(a) for a in at))
        self.n_pat = int(sum(len(part.patients) for part in parts))
        self.claim_order = np.argsort(np.concatenate(at), kind="stable")

        def scatter(arrays):
            return in_batch_order(arrays, at, n)

        for name in (*_Keys._CLAIM, "pcode"):
            setattr(self, name, scatter([k.claim[name] for k in keys]))
        for name in keys[0].coded:
            codes, values = _common_codes([k.coded[name] for k in keys])
            setattr(self, name, scatter(codes))
            setattr(self, {"dx3_code": "dx3_values", "doctor": "doctor_values", "region_p": "region_values"}[name], values)
        exam_codes, self.code_values = _common_codes([(k.exam_pairs[1], k.code_values) for k in keys])
        cat = lambda arrays: np.concatenate(arrays)  # noqa: E731
        self.line_features = SimpleNamespace(
            exam_pairs=(cat([k.exam_pairs[0] for k in keys]), cat(exam_codes)),
            drug_buys=tuple(cat([k.drug_buys[j] for k in keys]) for j in range(3)),
            drug_pairs=tuple(cat([k.drug_pairs[j] for k in keys]) for j in range(2)))
        first = parts[0].keys.provider
        self.n_prov, self.provider_ids = len(first["ids"]), first["ids"]
        self.prov_type_all, self.prov_tier_all, self.prov_beds_all = first["type"], first["tier"], first["beds"]
        self.tier, self.ptype = self.prov_tier_all[self.vcode], self.prov_type_all[self.vcode]


class _PairSet:
    """A set of (row, col) int pairs: a dense bit table when small, sorted keys otherwise."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int):
        self.n_cols = n_cols
        if n_rows * n_cols <= 64_000_000:
            self.table = np.zeros((n_rows, n_cols), dtype=bool)
            self.table[rows, cols] = True
            self.keys = None
        else:
            self.table = None
            self.keys = np.sort(rows.astype(np.int64) * n_cols + cols)

    def contains(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        ok = (cols >= 0) & (rows >= 0)
        r, c = np.where(ok, rows, 0), np.where(ok, cols, 0)
        if self.table is not None:
            if self.table.size == 0:
                return np.zeros(len(rows), dtype=bool)
            return ok & self.table[np.minimum(r, self.table.shape[0] - 1), c]
        key = r.astype(np.int64) * self.n_cols + c
        pos = np.clip(np.searchsorted(self.keys, key), 0, max(len(self.keys) - 1, 0))
        return ok & (self.keys[pos] == key) if len(self.keys) else np.zeros(len(rows), dtype=bool)


def _claim_flags(c: dict, b: _Base, supply: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Provider share column -> (claim-level flag, the claims it counts among; None = all)."""
    inpat = b.care == INPATIENT
    return {
        "peer_outlier_share": ((c["cost_z"] > 3) | (c["los_z"] > 3) | (c["lines_z"] > 3) | (c["lines_per_day_z"] > 3), None),
        "readmit_share": (np.maximum(c["readmit_15d"], c["readmitted_15d"]) > 0, inpat),
        "stay_overlap_share": (c["claims_during_stay"] > 0, inpat),
        "cohort_share": (c["cohort_lift"] > 2, inpat),
        "dup_claim_share": (c["dup_lines"] > 0, None),
        "overpriced_claim_share": (c["price_ratio_max"] > 1.05, None),
        "expensive_drug_share": (c["drug_price_pct"] > 0.9, b.drug_amount > 0),
        "cost_outlier_share": (c["cost_z"] > 3, None),
        "cheap_for_group_share": (c["cost_z"] < -1, inpat),
        "long_stay_share": (c["los_z"] > 3, inpat),
        "empty_stay_share": (c["empty_day_share"] > 0.2, inpat),
        "atypical_claim_share": (c["atypical_share"] > 0.2, None),
        "exam_pattern_share": ((c["exam_pattern_lift"] > 5) & (c["exam_pattern_claims"] >= 10), None),
        "implausible_share": ((c["implausible_lines"] > 0) | (c["implausible_dx"] > 0), None),
        "high_supply_share": (supply > 2, None),
        "oversupply_claim_share": (c["drug_oversupply"] > OVERSUPPLY, b.drug_amount > 0),
    }


def _together(b: _Base) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per claim: ``cohort_size`` and ``cohort_lift`` (inpatients admitted and discharged together at
    one provider) and ``same_day_dx_lift`` (claims of one diagnosis at one provider on one day). Counts
    over every patient's claims: each claim's values depend on the keys of the others, not their order."""
    n, inpat = b.n, b.care == INPATIENT
    idx = np.flatnonzero(inpat)
    # cohorts admitted and discharged together
    cohort, lift = np.zeros(n), np.ones(n)
    # (keys of several codes are laid out in mixed radix, each code's range its own: compact keys count fastest)
    if len(idx):
        v, a = b.vcode[idx].astype(np.int64), b.admit[idx] - b.admit.min()
        stay_days = np.minimum(b.los[idx].astype(np.int64), 9_999)
        n_days, n_stays = int(a.max()) + 1, int(stay_days.max()) + 1
        day = v * n_days + a
        same_dates = count_by(day * n_stays + stay_days)
        day_adm = count_by(day)
        los_share = count_by(v * n_stays + stay_days) / count_by(v)
        cohort[idx] = same_dates - 1
        lift[idx] = same_dates / (day_adm * los_share + 1.0)
    # cards used together: claims with the same diagnosis at one provider on one day, against
    # what the provider's volume that day and its diagnosis mix lead to expect
    v, a = b.vcode.astype(np.int64), (b.admit - b.admit.min()).astype(np.int64)
    dxk_all = b.dx3_code
    day = v * (int(a.max()) + 1 if n else 1) + a
    n_dx = int(dxk_all.max()) + 2 if n else 1
    n_day = count_by(day)
    same = count_by(day * n_dx + dxk_all + 1)
    dx_share = count_by(v * n_dx + dxk_all + 1) / count_by(v)
    return cohort, lift, same / (n_day * dx_share + 1.0)


def _code_lift(b: _Base, claim: np.ndarray, code: np.ndarray, cls: np.ndarray, ncode: int) -> np.ndarray:
    """Per claim, the largest lift of its item codes at its provider: claims billing the code here
    over what the provider's volume and its class's habit (type × tier, the provider itself
    left out) lead to expect, ``(n + 1) / (expected + 1)``; 1 for a claim without such codes.
    ``(claim, code)`` pairs are distinct."""
    if not len(claim):
        return np.ones(b.n)
    v, c = b.vcode[claim].astype(np.int64), cls[claim].astype(np.int64)
    n_vc, n_cc = count_by(v * ncode + code), count_by(c * ncode + code)
    claims_v = np.bincount(b.vcode, minlength=b.n_prov).astype(float)
    claims_c = np.bincount(cls, minlength=16).astype(float)
    nv, nc = claims_v[v], claims_c[c]
    expected = nv * (n_cc - n_vc) / np.maximum(nc - nv, 1.0)
    return np.maximum(group_max(claim, (n_vc + 1.0) / (expected + 1.0), b.n, fill=1.0), 1.0)


def _drug_rates(b: _Base, code: np.ndarray, min_purchases: int = 3):
    """Units per day of each (patient, drug) bought at least ``min_purchases`` times outside stays.

    rate = units bought before the last purchase / days from the first to the last purchase:
    what was consumed between purchases. Returns (patient per pair, (rate, code) per pair, pair count).
    """
    drug = (b.kind == DRUG) & (code >= 0)
    drug &= (b.care != INPATIENT)[b.cidx]
    return _drug_rates_of(b, b.cidx[drug], code[drug], b.qty[drug], min_purchases)


def _drug_rates_of(b: _Base, claim: np.ndarray, code: np.ndarray, qty: np.ndarray, min_purchases: int = 3,
                   line_pairs: bool = False):
    """:func:`_drug_rates` of the drug purchases given as (claim, code, units), in line order.

    ``line_pairs``: also return, per purchase, the position of its (patient, drug) pair among
    those returned (-1 where the pair has too few purchases)."""
    p, c, q, d = b.pcode[claim].astype(np.int64), code.astype(np.int64), qty, b.admit[claim]
    if len(p) == 0:
        empty = (np.zeros(0, np.int64), (np.zeros(0), np.zeros(0, np.int64)), 0)
        return (*empty, np.zeros(0, np.int64)) if line_pairs else empty
    day0 = d - d.min()
    order = np.argsort((p * (int(c.max()) + 1) + c) * (int(day0.max()) + 1) + day0, kind="stable")  # = lexsort((d, c, p))
    p, c, q, d = p[order], c[order], q[order], d[order]
    start = np.flatnonzero(np.r_[True, (p[1:] != p[:-1]) | (c[1:] != c[:-1])])
    end = np.r_[start[1:], len(p)] - 1
    n = end - start + 1
    total = np.add.reduceat(q, start)
    keep = (n >= min_purchases) & (d[end] > d[start])
    rate = (total - q[end])[keep] / (d[end] - d[start])[keep]
    found = p[start][keep], (rate, c[start][keep]), int(keep.sum())
    if not line_pairs:
        return found
    pair = np.where(keep, np.cumsum(keep) - 1, -1)[np.repeat(np.arange(len(start)), n)]  # per sorted purchase
    line_pair = np.empty_like(pair)
    line_pair[order] = pair
    return (*found, line_pair)


def _share_below(quantiles: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of ``quantiles[row]`` (each row ascending) strictly below each value, by one binary search.

    Rows are laid end to end with offsets larger than any spread of values, so the
    flattened table stays sorted and one ``searchsorted`` serves every row.
    The layout depends on the quantiles only (values beyond all of them are moved just beyond
    them, which leaves their counts as they are), so a claim's share is the same bits whatever
    other claims are scored with it.
    """
    q = np.nan_to_num(quantiles, nan=np.inf)
    finite = q[np.isfinite(q)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 0.0)
    k = q.shape[1]
    offset = np.arange(q.shape[0]) * 2.0 * (hi - lo + 4.0)
    flat = np.clip(q, lo - 2.0, hi + 2.0) + offset[:, None]  # -inf: below every value, +inf (a NaN quantile): above
    pos = np.searchsorted(flat.ravel(), np.clip(values, lo - 1.0, hi + 1.0) + offset[rows], side="left")
    return (pos - rows * k) / k


def _find(sorted_keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Position of each query in ``sorted_keys`` (unique, ascending), -1 where absent."""
    if len(sorted_keys) == 0:
        return np.full(len(queries), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    return np.where(sorted_keys[pos] == queries, pos, -1)


def _median_table(values, code, col, n_codes: int, n_cols: int, min_count: int) -> np.ndarray:
    """Dense (code, col) table of the median of ``values``; NaN where fewer than ``min_count`` rows."""
    table = np.full((n_codes, max(n_cols, 1)), np.nan)
    ok = (code >= 0) & (col >= 0)
    key = code[ok].astype(np.int64) * max(n_cols, 1) + col[ok]
    g = pd.Series(values[ok]).groupby(key)
    med, cnt = g.median(), g.size()
    med = med[cnt.to_numpy() >= min_count]
    idx = med.index.to_numpy()
    table[idx // max(n_cols, 1), idx % max(n_cols, 1)] = med.to_numpy()
    return table


def pair_counts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (a, b) pairs of non-negative ints and how many rows each has."""
    key = a.astype(np.int64) * (int(b.max()) + 1 if len(b) else 1) + b
    codes, uniq = pd.factorize(key)
    counts = np.bincount(codes).astype(float) if len(codes) else np.zeros(0)
    width = int(b.max()) + 1 if len(b) else 1
    return (uniq // width).astype(np.int64), (uniq % width).astype(np.int64), counts


def _reduce(out: np.ndarray, codes: np.ndarray, values: np.ndarray, how: str) -> None:
    r = pd.Series(values).groupby(codes, sort=False).agg(how)
    out[r.index.to_numpy()] = r.to_numpy()


def _implausible(profile: dict, code: np.ndarray, female: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Rows whose code is almost never seen for the patient's sex, or outside its age range."""
    known = code >= 0
    k = np.where(known, code, 0)
    if len(profile["bad_male"]) == 0:
        return np.zeros(len(code), dtype=bool)
    sex_bad = np.where(female, profile["bad_female"][k], profile["bad_male"][k])
    age_bad = (age < profile["age_lo"][k]) | (age > profile["age_hi"][k])
    return known & (sex_bad | age_bad)

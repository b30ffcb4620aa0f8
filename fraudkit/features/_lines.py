"""Item lines reduced to per-claim arrays, a chunk of lines at a time.

A batch has about 5.6 item lines per claim. Feature building needs them only through
per-claim sums, maxima and counts (amount by kind, lines, duplicated lines, active days,
the exam-set signature, prices against the learned references, ...), plus two small
extracts (distinct exam codes of each claim, repeat drug purchases). This module computes
all of them chunk by chunk: one chunk holds whole claims (about a million lines), so the
arrays of every line of the batch and the temporaries derived from them are never held
at once. A claim's lines are reduced in one chunk, in their order, by the same operations
as on the whole table, so the results are the same bits whatever the chunk size.

The same reduction is what a worker does with one partition of item lines.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudkit import _threads
from fraudkit._threads import map_in_order

from ._prep import cat_codes, codes_in, days, distinct, hash_u26

KINDS = ("drug", "exam", "treatment", "consumable", "bed", "other")
DRUG, EXAM, BED = 0, 1, 4
INPATIENT = 2

#: Item lines per chunk (rounded to whole claims).
CHUNK_LINES = 1 << 20

#: Threads reducing chunks side by side (NumPy and Arrow release the GIL in the heavy parts).
THREADS = _threads.THREADS


@dataclass
class Chunk:
    """Columns of the item lines ``[lo, hi)`` as arrays (claim positions and item codes as int64)."""

    lo: int
    hi: int
    cidx: np.ndarray
    code_raw: np.ndarray
    kind: np.ndarray
    qty: np.ndarray
    price: np.ndarray
    amount: np.ndarray
    sday: np.ndarray


class Lines:
    """The item lines of a batch, coded against its claims, readable chunk by chunk.

    Holds only two int32 codes per line (the claim's position, the item code in order of
    first appearance); the other columns are read from ``items`` one chunk at a time.
    Chunks end between claims when each claim's lines are contiguous (as every writer
    of the contract does it); otherwise the whole table is one chunk.
    """

    def __init__(self, items: pd.DataFrame, claim_id: pd.Series, chunk_lines: int | None = None,
                 cidx: np.ndarray | None = None):
        self.items = items
        self.m = len(items)
        if cidx is None:  # else: each line's claim, as the loader found it (Batch.rows_of)
            cidx = codes_in(claim_id, items["claim_id"])
        code_raw, self.code_values = pd.factorize(items["item_code"].astype("str"))
        # each code as a number of its own text, not of its order of appearance: the same in any part of a batch
        self.code_number = (pd.util.hash_array(np.asarray(self.code_values, dtype=object)) % (1 << 31)).astype(np.int64)
        small = len(claim_id) < 2**31 and len(self.code_values) < 2**31
        self.cidx = cidx.astype(np.int32) if small else cidx
        self.code_raw = code_raw.astype(np.int32) if small else code_raw
        self.bounds = self._bounds(chunk_lines or CHUNK_LINES)

    def _bounds(self, chunk_lines: int) -> list[tuple[int, int]]:
        m = self.m
        if m == 0:
            return []
        if m <= chunk_lines:
            return [(0, m)]
        c = self.cidx
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])  # first line of each run of one claim
        if len(starts) != np.count_nonzero(np.bincount(c - c.min())):  # as many runs as distinct claims
            return [(0, m)]  # some claim's lines are not together: reduce them all at once
        cuts = np.unique(starts[np.searchsorted(starts, np.arange(chunk_lines, m, chunk_lines))
                                .clip(max=len(starts) - 1)])
        edges = [0] + [int(x) for x in cuts if 0 < x < m] + [m]
        return list(zip(edges[:-1], edges[1:]))

    def chunk(self, lo: int, hi: int) -> Chunk:
        it = self.items.iloc[lo:hi]
        return Chunk(lo, hi, self.cidx[lo:hi].astype(np.int64), self.code_raw[lo:hi].astype(np.int64),
                     cat_codes(it["item_kind"], KINDS), it["quantity"].to_numpy(dtype=float),
                     it["unit_price"].to_numpy(dtype=float), it["amount"].to_numpy(dtype=float), days(it["service_date"]))

    def map(self, reduce, threads: int | None = None) -> list:
        """``reduce`` of every chunk (``self.chunk(lo, hi)`` for each of ``self.bounds``), side by side on ``threads`` threads.

        ``reduce`` may add into shared per-claim arrays only through :func:`_sum_into` and
        :func:`_max_into`: a chunk holds whole claims, so no claim is written by two chunks,
        and the slices two chunks add into are serialised by a lock. The results come back
        in chunk order, the same bits for any number of threads.
        """
        return map_in_order(lambda bound: reduce(self.chunk(*bound)), self.bounds,
                            threads=THREADS if threads is None else threads)

    def whole(self) -> Chunk:
        """Every line at once (fitting learns medians over all lines)."""
        return self.chunk(0, self.m) if self.m else Chunk(0, 0, *(np.zeros(0, np.int64),) * 3, *(np.zeros(0),) * 3,
                                                          np.zeros(0, np.int64))


_ADD_LOCK = threading.Lock()


def _sum_into(out: np.ndarray, codes: np.ndarray, weights=None) -> None:
    """``out += bincount(codes, weights)`` over the range of codes present (claims of one chunk).

    The range may overlap another chunk's (claims need not come in order), so the addition
    is serialised; it only adds zeros to the other chunk's claims, so the order does not matter.
    """
    if len(codes) == 0:
        return
    lo, hi = int(codes.min()), int(codes.max()) + 1
    counts = np.bincount(codes - lo, weights=weights, minlength=hi - lo)
    with _ADD_LOCK:
        out[lo:hi] += counts


def _max_into(out: np.ndarray, codes: np.ndarray, values: np.ndarray) -> None:
    """``out[c] = max of values of code c`` for the codes present (each code's rows all in this call)."""
    if len(codes) == 0:
        return
    if not (np.diff(codes) >= 0).all():
        order = np.argsort(codes, kind="stable")
        codes, values = codes[order], values[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    out[codes[starts]] = np.maximum.reduceat(values, starts)


@dataclass
class LineTotals:
    """Per-claim sums of the item lines that need no learned state."""

    lines: np.ndarray
    item_total: np.ndarray
    drug_amount: np.ndarray
    exam_amount: np.ndarray
    drug_qty: np.ndarray
    dup_lines: np.ndarray
    active_days: np.ndarray
    exam_lines: np.ndarray
    exam_sig: np.ndarray


def line_totals(lines: Lines, n: int) -> LineTotals:
    """Lines, amount by kind, drug units, duplicated lines, active days and exam-set signature per claim."""
    k = len(KINDS)
    count = np.zeros(n, dtype=np.int64)
    item_total, drug_amount, exam_amount, drug_qty = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    dup, active_days, exam_lines = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    ha, hb = np.zeros(n), np.zeros(n)
    ncode = len(lines.code_values) + 1

    def reduce(ch: Chunk) -> None:
        ci = ch.cidx
        _sum_into(count, ci)
        lo, hi = int(ci.min()), int(ci.max()) + 1
        by_kind = np.bincount((ci - lo) * k + np.maximum(ch.kind, 0), weights=ch.amount,
                              minlength=(hi - lo) * k)[: (hi - lo) * k].reshape(hi - lo, k)
        with _ADD_LOCK:
            item_total[lo:hi] += by_kind.sum(axis=1)
            drug_amount[lo:hi] += by_kind[:, DRUG]
            exam_amount[lo:hi] += by_kind[:, EXAM]
        drug = ch.kind == DRUG
        _sum_into(drug_qty, ci[drug], ch.qty[drug])
        # duplicated lines: same claim, code and service day;
        # and calendar days with at least one daily (non-bed) line; one sort serves both
        span = int(ch.sday.max() - ch.sday.min() + 1)
        day0 = ch.sday - ch.sday.min()
        daily = ch.kind != BED
        key = np.sort((ci[daily] * span + day0[daily]) * ncode + ch.code_raw[daily])
        day_key = key // ncode
        if len(key):
            repeat = np.r_[False, key[1:] == key[:-1]]
            new_day = np.r_[True, day_key[1:] != day_key[:-1]]
            _sum_into(dup, day_key[repeat] // span)
            _sum_into(active_days, day_key[new_day] // span)
        # exam-set signature: order-free sums of two 26-bit hashes of (code, quantity)
        ex = ch.kind == EXAM
        line_key = lines.code_number[ch.code_raw[ex]] * 100_003 + np.round(ch.qty[ex] * 1000).astype(np.int64)
        _sum_into(ha, ci[ex], hash_u26(line_key, 1))
        _sum_into(hb, ci[ex], hash_u26(line_key, 2))
        _sum_into(exam_lines, ci[ex])

    lines.map(reduce)
    exam_sig = np.where(exam_lines > 0, (ha.astype(np.int64) * 1_000_003 + hb.astype(np.int64)) * 64 + exam_lines % 64, -1)
    return LineTotals(count.astype(float), item_total, drug_amount, exam_amount, drug_qty, dup.astype(float),
                      active_days.astype(float), exam_lines, exam_sig)


@dataclass
class LineFeatures:
    """Per-claim reductions of the item lines against a fitted builder's references, and two extracts."""

    price_ratio_max: np.ndarray  # largest unit price / reference price (1 where none)
    overpriced: np.ndarray  # money billed above the reference prices
    drug_money: np.ndarray  # money of priced drug lines
    drug_pct_money: np.ndarray  # the same, weighted by the line's price percentile in its context
    atypical: np.ndarray  # money of items atypical for the claim's context
    core_present: np.ndarray  # distinct core items of the context billed
    implausible: np.ndarray  # lines implausible for the patient's sex or age
    exam_pairs: tuple[np.ndarray, np.ndarray]  # (claim, item code) of each distinct exam code of a claim
    drug_buys: tuple[np.ndarray, np.ndarray, np.ndarray]  # (claim, vocabulary code, units) of known drugs outside stays
    drug_pairs: tuple[np.ndarray, np.ndarray] = None  # distinct (claim, vocabulary code) of known, priced drug lines
    stay_pairs: tuple[np.ndarray, np.ndarray] = None  # distinct (claim, vocabulary code) of known items of inpatient claims


def _reference_prices(builder) -> np.ndarray:
    """Each code's reference unit price (NaN = none) by column ``(region + 1) * 4 + tier`` (region -1 =
    unknown): the median at providers of the same region and tier where known, else of the same
    tier, else anywhere. Without regional medians, by column ``tier``."""
    base, by_tier = builder.ref_price_, builder.ref_price_tier_
    tier_ref = np.where(np.isnan(by_tier), base[:, None], by_tier)  # (codes, 4)
    if builder.ref_price_region_ is None:
        return tier_ref
    n_regions = builder.ref_price_region_.shape[1] // 4
    by_region = builder.ref_price_region_.reshape(len(base), n_regions, 4)
    regional = np.where(np.isnan(by_region), tier_ref[:, None, :], by_region)
    return np.concatenate([tier_ref[:, None, :], regional], axis=1).reshape(len(base), (n_regions + 1) * 4)


class _ItemFlags:
    """Typical and core item sets of the contexts, looked up together (one gather per line when both are dense)."""

    def __init__(self, typical, core):
        self.typical, self.core = typical, core
        self.table = None
        if typical.table is not None and core.table is not None and typical.table.shape == core.table.shape:
            self.table = (typical.table.astype(np.uint8) | (core.table.astype(np.uint8) << 1)).ravel()
            self.shape = typical.table.shape

    def lookup(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(atypical, core) per line: the code is not typical / is a core item of the row's context."""
        if self.table is None or self.table.size == 0:
            return ~self.typical.contains(rows, cols), self.core.contains(rows, cols)
        ok = (cols >= 0) & (rows >= 0)
        at = np.minimum(rows, self.shape[0] - 1) * self.shape[1] + cols
        flags = np.where(ok, self.table[np.where(ok, at, 0)], 0)
        return (flags & 1) == 0, (flags & 2) != 0


def line_features(builder, b, lines: Lines, dx: np.ndarray, row: np.ndarray, implausible) -> LineFeatures:
    """Reduce the item lines of base ``b`` against ``builder``'s learned references, chunk by chunk.

    ``row`` is each claim's context row of the typical- and core-item tables, ``implausible``
    the function telling lines implausible for the patient's sex or age.
    """
    n = b.n
    out = LineFeatures(np.ones(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, np.int64),
                       np.zeros(n), None, None)
    # each distinct item code of the batch in the fitted vocabulary (-1 = unseen)
    vocab = codes_in(builder.code_vocab_, pd.Series(np.asarray(lines.code_values, dtype=object), dtype="str"))
    tier_c = np.clip(b.tier, 0, 3)
    region_c = None
    if builder.ref_price_region_ is not None:
        region_c = codes_in(builder.region_vocab_, b.prov_region_str)[b.vcode]
    outside = b.care != INPATIENT
    ncode_vocab = len(builder.code_vocab_) + 1
    ncode_raw = len(lines.code_values) + 1
    from ._builder import _find, _share_below  # noqa: PLC0415 (the builder imports this module)

    # per claim, the column of the reference-price table (region × tier) and the row of the
    # drug-price quantiles (diagnosis × care, else care type): looked up once per claim, not per line
    ref_table = _reference_prices(builder)
    ref_col = (np.maximum(region_c, -1) + 1) * 4 + tier_c if region_c is not None else tier_c
    ctx_row = builder._context_row(b, dx)
    found = _find(builder.drug_price_rows_, ctx_row)
    drug_qrow = np.where(found >= 0, found, _find(builder.drug_price_rows_, b.care))
    item_flags = _ItemFlags(builder.typical_items_, builder.core_items_)

    def reduce(ch: Chunk):
        ci = ch.cidx
        code = vocab[ch.code_raw] if len(vocab) else np.full(len(ci), -1, np.int64)
        # prices against the learned catalogue reference
        ref = np.where(code >= 0, ref_table[np.maximum(code, 0), ref_col[ci]], np.nan)
        ratio = np.where(ref > 0, ch.price / np.where(ref > 0, ref, 1.0), 1.0)
        _max_into(out.price_ratio_max, ci, ratio)
        over = np.where(ref > 0, np.maximum(ch.amount - ch.qty * np.nan_to_num(ref), 0.0), 0.0)
        _sum_into(out.overpriced, ci, over)
        # drug prices against the drugs billed for the same diagnosis and care
        # (their percentiles are looked up after the loop, in one call over every drug line, as before)
        drug = (ch.kind == DRUG) & (ch.price > 0)
        dci = ci[drug]
        qrow = drug_qrow[dci]
        has = qrow >= 0
        drugs = (dci, qrow[has], np.log(ch.price[drug][has]), has, ch.amount[drug])
        # items atypical for the diagnosis; core items of the group present
        atyp, core = item_flags.lookup(row[ci], code)
        _sum_into(out.atypical, ci[atyp], ch.amount[atyp])
        present = distinct(ci[core] * ncode_vocab + code[core]) // ncode_vocab
        _sum_into(out.core_present, present)
        bad = implausible(builder.code_profile_, code, b.female[ci], b.age[ci])
        _sum_into(out.implausible, ci[bad], np.ones(int(bad.sum())))
        # one row per (claim, exam code); drug purchases outside stays
        ex = ch.kind == EXAM
        buy = (ch.kind == DRUG) & (code >= 0)
        buy &= outside[ci]
        known = drug & (code >= 0)
        stay = ~outside[ci] & (code >= 0)
        # the exam and drug pairs feed counts and maxima only, in any order; the stay pairs' order is
        # that of the sums of their log-likelihoods (fraudkit.features._upcoding): kept as billed
        return (drugs, distinct(ci[ex] * ncode_raw + ch.code_raw[ex]), (ci[buy], code[buy], ch.qty[buy]),
                distinct(ci[known] * ncode_vocab + code[known]), pd.unique(ci[stay] * ncode_vocab + code[stay]))

    done = lines.map(reduce)
    drugs, pairs, buys, dpairs, spairs = ([d[i] for d in done] for i in range(5))
    if drugs:
        dci, qrow, logp, has, w = (np.concatenate([d[i] for d in drugs]) for i in range(5))
        pct = np.full(len(dci), 0.5)
        if has.any():
            pct[has] = _share_below(builder.drug_price_q_, qrow, logp)
        _sum_into(out.drug_money, dci, w)
        _sum_into(out.drug_pct_money, dci, w * pct)
    pair = np.concatenate(pairs) if pairs else np.zeros(0, np.int64)
    out.exam_pairs = (pair // ncode_raw, pair % ncode_raw)
    cat = (lambda i, dtype: np.concatenate([x[i] for x in buys]) if buys else np.zeros(0, dtype))
    out.drug_buys = (cat(0, np.int64), cat(1, np.int64), cat(2, float))
    dpair = np.concatenate(dpairs) if dpairs else np.zeros(0, np.int64)
    out.drug_pairs = (dpair // ncode_vocab, dpair % ncode_vocab)
    spair = np.concatenate(spairs) if spairs else np.zeros(0, np.int64)
    out.stay_pairs = (spair // ncode_vocab, spair % ncode_vocab)
    return out

"""Drug swapping (``fraudkit.features._swap``): substitutes learned from diagnosis profiles, and the
lift of a dear substitute at its provider."""

import numpy as np

from fraudkit.features import _swap
from fraudkit.features._swap import substitutes, swap_lift


def _pairs(*groups):
    """(claim ctx, pair claim, pair code) from groups of (number of claims, context, code), one code per claim."""
    ctx, claim, code = [], [], []
    for n, c, k in groups:
        start = len(ctx)
        ctx += [c] * n
        claim += list(range(start, start + n))
        code += [k] * n
    return np.array(ctx), np.array(claim), np.array(code)


def test_substitutes_share_a_diagnosis_profile_and_the_dear_one_has_a_premium():
    # codes 0 and 1 billed for contexts 0 and 1 in the same proportions (2:1), code 2 for context 2 only,
    # code 3 like code 0 but on too few claims to be trusted
    ctx, claim, code = _pairs((40, 0, 0), (20, 1, 0), (20, 0, 1), (10, 1, 1), (30, 2, 2), (5, 0, 3))
    subs = substitutes(ctx, claim, code, np.array([10.0, 40.0, 100.0, 50.0]), 4, min_claims=20)
    assert subs.neighbours.toarray().tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    # premium = log price − use-weighted mean log price of the substitutes (uses 60 and 30)
    np.testing.assert_allclose(subs.premium, [-np.log(4) / 3, 2 * np.log(4) / 3, 0.0, 0.0])


def test_swap_lift_known_answer():
    subs = substitutes(*_pairs((40, 0, 0), (20, 0, 1)), np.array([10.0, 40.0]), 2, min_claims=5)
    assert subs.premium[1] > 0.05 > subs.premium[0]
    # provider 0 bills the dear code 1 on all its 10 claims; its peers 1 and 2 (same class) on 2 of 20 each
    provider = np.r_[np.zeros(10), np.ones(20), np.full(20, 2)].astype(np.int64)
    code = np.r_[np.ones(10), np.zeros(18), np.ones(2), np.zeros(18), np.ones(2)].astype(np.int64)
    claim = np.arange(50)
    lift = swap_lift(subs, claim, code, provider, np.zeros(50, np.int64), 50)
    # provider 0: n = 10 of N = 10 slot claims; peers' share of code 1 = 4 / 40, so expected = 1,
    # z = (10 − 1) / √(1 · 0.9 + 1) = 6.5 > 3 and lift = (10 + 1) / (1 + 1)
    np.testing.assert_allclose(lift[:10], 5.5)
    # the peers bill the dear code less than the others do (no excess); the cheap code never counts
    np.testing.assert_allclose(lift[10:], 1.0)
    # in a class of its own, provider 0 has no peers: nothing is expected and nothing is flagged
    alone = swap_lift(subs, claim, code, provider, (provider == 0).astype(np.int64), 50)
    assert (alone[10:] == 1.0).all()


def test_swap_lift_needs_significance():
    subs = substitutes(*_pairs((40, 0, 0), (20, 0, 1)), np.array([10.0, 40.0]), 2, min_claims=5)
    # provider 0 bills the dear code on 2 of 3 claims against a peer share of 0.1: lift 1.5 but z < 3
    provider = np.r_[np.zeros(3), np.ones(40)].astype(np.int64)
    code = np.r_[1, 1, 0, np.zeros(36), np.ones(4)].astype(np.int64)
    lift = swap_lift(subs, np.arange(43), code, provider, np.zeros(43, np.int64), 43)
    assert (lift == 1.0).all()


def test_empty_inputs():
    subs = substitutes(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(3), 3)
    assert (subs.premium == 0).all()
    assert (swap_lift(subs, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(4, np.int64),
                      np.zeros(4, np.int64), 4) == 1.0).all()


def test_swapped_claims_stand_out(default_200k):
    from fraudkit.features import CLAIM_MODEL_FEATURES
    from planted import forest_recall, scheme_rows

    batch, labels, f = default_200k
    swap, clean = scheme_rows(labels, f.claims.index, "drug_swapping")
    lift = f.claims["drug_swap_lift"].to_numpy()
    assert swap.sum() >= 100
    # few legitimate claims get a lift at all (significance), most swapped ones do (measured 0.3 % and 68 %)
    assert (lift[swap] > 1).mean() >= 0.5
    assert (lift[clean] > 1).mean() <= 0.01
    # recall of drug swapping in the top 5 % of the claim forest (seed 0), measured 0.62 with
    # drug_swap_lift and 0.43 with drug_price_pct in its place (forest seed 1: 0.67 / 0.38)
    assert "drug_swap_lift" in CLAIM_MODEL_FEATURES
    recall = {col: forest_recall(batch, labels, f, [col if c == "drug_swap_lift" else c for c in CLAIM_MODEL_FEATURES],
                                 "drug_swapping") for col in ("drug_swap_lift", "drug_price_pct")}
    assert recall["drug_swap_lift"] >= 0.5
    assert recall["drug_swap_lift"] >= recall["drug_price_pct"] + 0.1


def test_swap_lift_same_with_sparse_and_dense_counts(monkeypatch):
    """Many providers, codes and classes: the count tables held sparse (large batches) or dense give the same bits."""
    rng = np.random.default_rng(5)
    n_claims, n_codes = 6_000, 12
    ctx = rng.integers(0, 4, n_claims)
    # each claim bills one or two drugs; codes 2k and 2k+1 are billed for the same contexts (substitutes)
    claim = np.r_[np.arange(n_claims), rng.choice(n_claims, 2_000, replace=False)]
    code = 2 * (ctx[claim] * 3 % 6) + (rng.random(len(claim)) < 0.3)
    keep = np.unique(claim * n_codes + code)
    claim, code = keep // n_codes, keep % n_codes
    subs = substitutes(ctx, claim, code, np.tile([10.0, 30.0], n_codes // 2), n_codes, min_claims=20)
    provider = rng.integers(0, 300, n_claims)
    swapper = provider < 3  # three providers bill the dear substitute on nearly every claim
    code = np.where(swapper[claim] & (rng.random(len(claim)) < 0.9), code | 1, code)
    keep = np.unique(claim * n_codes + code)
    claim, code = keep // n_codes, keep % n_codes
    klass = provider % 4
    dense = swap_lift(subs, claim, code, provider, klass, n_claims)  # 300 providers x 12 codes: dense tables
    monkeypatch.setattr(_swap, "DENSE_CELLS", 0)
    sparse = swap_lift(subs, claim, code, provider, klass, n_claims)
    np.testing.assert_array_equal(sparse, dense)
    assert dense[swapper].mean() > 1.5 and (dense[~swapper] == 1.0).mean() > 0.95

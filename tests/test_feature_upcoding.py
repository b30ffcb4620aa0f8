"""Upcoding (``fraudkit.features._upcoding``): a stay whose items fit a cheaper diagnosis group than the one billed."""

import numpy as np

from fraudkit.features._upcoding import cheaper_group_llr, item_profiles


def _profiles():
    # group 10 (cheap): every stay bills codes 0 and 1; group 20 (dear): codes 2 and 3, half also code 0
    return item_profiles(np.array([20, 10]), np.array([40, 40]), np.array([10, 10, 20, 20, 20]),
                         np.array([0, 1, 2, 3, 0]), np.array([40, 40, 40, 40, 20]), np.log([100.0, 1000.0])[::-1], 5)


def test_a_dear_stay_with_the_cheap_groups_items_scores_the_log_likelihood_gap():
    p = _profiles()
    assert p.keys.tolist() == [10, 20]  # sorted, costs follow their groups
    # stays: 0 = dear group, its own items; 1 = dear group billed, cheap items; 2 = cheap group, cheap items;
    # 3 = unknown group; 4 = dear group, no items at all
    stay_group = np.array([20, 20, 10, 99, 20])
    pair_stay, pair_code = np.array([0, 0, 1, 1, 2, 2, 3]), np.array([2, 3, 0, 1, 0, 1, 0])
    llr = cheaper_group_llr(p, stay_group, pair_stay, pair_code, 5)
    assert llr[0] == 0 and llr[2] == 0 and llr[3] == 0  # fits its own group; no cheaper group; no profile
    # by hand: shares (k + 0.01) / (n + 1), never-billed codes 0.01 / 41
    s = lambda k: (k + 0.01) / 41  # noqa: E731
    s0 = 0.01 / 41
    cheap = np.log(s(40)) * 2 + np.log1p(-s0) * 3  # codes 0, 1 billed; 2, 3, 4 absent
    dear = np.log(s(20)) + np.log(s0) + np.log1p(-s(40)) * 2 + np.log1p(-s0)  # code 0 half, code 1 never
    np.testing.assert_allclose(llr[1], cheap - dear)
    # nothing billed: the group that expects fewer items explains an empty stay a little better
    empty_cheap, empty_dear = np.log1p(-s(40)) * 2 + np.log1p(-s0) * 3, np.log1p(-s(40)) * 2 + np.log1p(-s(20)) + np.log1p(-s0) * 2
    np.testing.assert_allclose(llr[4], empty_cheap - empty_dear)
    assert llr[4] < 1 < llr[1] / 10


def test_unknown_codes_are_left_out_and_a_single_group_gives_zero():
    p = _profiles()
    # codes the profiles never saw are left out: the stay scores as one without items
    unknown = cheaper_group_llr(p, np.array([20]), np.array([0, 0]), np.array([-1, 7]), 1)
    np.testing.assert_allclose(unknown, cheaper_group_llr(p, np.array([20]), np.zeros(0, np.int64), np.zeros(0, np.int64), 1))
    one = item_profiles(np.array([10]), np.array([40]), np.array([10]), np.array([0]), np.array([40]), np.array([1.0]), 2)
    assert (cheaper_group_llr(one, np.array([10]), np.array([0]), np.array([1]), 1) == 0).all()


def test_upcoded_stays_stand_out(default_200k):
    from fraudkit.features import CLAIM_MODEL_FEATURES
    from planted import forest_recall, scheme_rows

    batch, labels, f = default_200k
    up, clean = scheme_rows(labels, f.claims.index, "upcoding")
    llr = f.claims["cheaper_dx_llr"].to_numpy()
    assert up.sum() >= 100
    # upcoding within one ICD-10 category (E11.9 -> E11.2) is invisible at category level; across
    # categories most upcoded stays are explained better by a cheaper group, almost no clean claim is
    assert (llr[up] > 0).mean() >= 0.3
    assert (llr[clean] > 0).mean() <= 0.01
    without = [c for c in CLAIM_MODEL_FEATURES if c != "cheaper_dx_llr"]
    recall = {True: forest_recall(batch, labels, f, CLAIM_MODEL_FEATURES, "upcoding"),
              False: forest_recall(batch, labels, f, without, "upcoding")}
    assert recall[True] >= recall[False] + 0.1, recall


def test_no_groups_at_all():
    none = item_profiles(np.zeros(0, np.int64), np.zeros(0), np.array([3]), np.array([0]), np.array([5]), np.zeros(0), 2)
    assert none.lift.shape == (2, 0)
    assert (cheaper_group_llr(none, np.array([3, -1]), np.array([0]), np.array([0]), 2) == 0).all()

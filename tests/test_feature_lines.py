"""Item lines are reduced per claim chunk by chunk (``fraudkit.features._lines``): same features, bit for bit."""

import numpy as np
import pandas as pd
import pytest

from fraudkit.features import FeatureBuilder, _lines
from fraudkit.io import Batch
from fraudkit.synthetic import Scenario, generate


@pytest.fixture(scope="module")
def batch_and_builder():
    batch, _ = generate(Scenario.from_yaml("synthetic/tiny.yaml"), n_claims=6_000, seed=3)
    return batch, FeatureBuilder().fit(batch)


def _features(builder, batch, chunk_lines, monkeypatch):
    monkeypatch.setattr(_lines, "CHUNK_LINES", chunk_lines)
    return builder.transform(batch)


def _assert_same(a, b):
    for name in ("claims", "patients", "providers"):
        x, y = getattr(a, name), getattr(b, name)
        pd.testing.assert_index_equal(x.index, y.index)
        assert list(x.columns) == list(y.columns)
        for col in x.columns:
            assert np.array_equal(x[col].to_numpy(), y[col].to_numpy(), equal_nan=True), (name, col)


@pytest.mark.parametrize("chunk_lines", [1, 997, 10_000])
def test_chunked_lines_give_the_same_bits(batch_and_builder, monkeypatch, chunk_lines):
    batch, builder = batch_and_builder
    whole = _features(builder, batch, 10**9, monkeypatch)
    _assert_same(whole, _features(builder, batch, chunk_lines, monkeypatch))


@pytest.mark.parametrize("threads", [2, 4])
def test_chunks_reduced_on_threads_give_the_same_bits(batch_and_builder, monkeypatch, threads):
    # claims' blocks of lines shuffled, so that the claim ranges of the chunks overlap
    batch, builder = batch_and_builder
    cidx = _lines.Lines(batch.items, batch.claims["claim_id"]).cidx
    order = np.argsort(np.random.default_rng(0).permutation(len(batch.claims))[cidx], kind="stable")
    moved = Batch(batch.patients, batch.providers, batch.claims, batch.items.iloc[order].reset_index(drop=True))
    for b in (batch, moved):
        monkeypatch.setattr(_lines, "THREADS", 1)
        one = _features(builder, b, 300, monkeypatch)
        monkeypatch.setattr(_lines, "THREADS", threads)
        _assert_same(one, _features(builder, b, 300, monkeypatch))


def test_chunks_end_between_claims_and_lines_out_of_claim_order_are_one_chunk(batch_and_builder, monkeypatch):
    batch, builder = batch_and_builder
    lines = _lines.Lines(batch.items, batch.claims["claim_id"], chunk_lines=500)
    assert len(lines.bounds) > 5
    c = lines.cidx
    for lo, hi in lines.bounds[1:]:
        assert c[lo] != c[lo - 1]  # a chunk starts with a claim's first line
    # claims' blocks of lines in reverse order: still grouped, so still chunked, and the same features
    order = np.argsort(-lines.cidx.astype(np.int64), kind="stable")
    reversed_items = batch.items.iloc[order].reset_index(drop=True)
    moved = Batch(batch.patients, batch.providers, batch.claims, reversed_items)
    assert len(_lines.Lines(moved.items, moved.claims["claim_id"], chunk_lines=500).bounds) > 5
    _assert_same(_features(builder, moved, 10**9, monkeypatch), _features(builder, moved, 500, monkeypatch))
    # one claim's lines split apart: everything is reduced at once
    split = pd.concat([batch.items.iloc[1:], batch.items.iloc[:1]], ignore_index=True)
    assert _lines.Lines(split, batch.claims["claim_id"], chunk_lines=500).bounds == [(0, len(split))]


def test_a_batch_without_item_lines(batch_and_builder):
    batch, builder = batch_and_builder
    empty = Batch(batch.patients, batch.providers, batch.claims, batch.items.iloc[:0])
    feats = builder.transform(empty)
    assert (feats.claims["lines"] == 0).all() and len(feats.claims) == len(batch.claims)

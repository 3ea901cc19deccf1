"""The P-sized steps of the ranking core (ScoreIntervals) against the definitions of their counts
and the dense float64 relations of the oracle, on ties: equal positives, positives exactly
2 * delta apart (hi_i == lo_k), boundaries on centres."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alrp_core import backends
from alrp_core.intervals import ScoreIntervals, bin_counts, window_geometry

from .oracle import smoothed_step


def intervals_of(centres, delta):
    """ScoreIntervals of centres in index order (any order, the lowest 0)."""
    ascending = torch.argsort(centres)
    return ScoreIntervals(centres[ascending], ascending, delta)


@st.composite
def tied_centres(draw):
    """(centres (P, ) float64 with the lowest 0, delta, seed): on a grid of delta / 2 steps (ties
    of centres, boundaries and centres), or off it."""
    num_pos = draw(st.integers(1, 60))
    delta = draw(st.sampled_from([0.05, 0.5, 1.0, 2.5]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        centres = rng.integers(0, draw(st.integers(1, 12)), size=num_pos) * (delta / 2)
    else:
        centres = rng.normal(size=num_pos) * draw(st.sampled_from([0.01, 1.0, 30.0]))
    centres = torch.tensor(centres - centres.min(), dtype=torch.float64)
    return centres, delta, seed


def test_counts_of_a_hand_computed_case():
    # Positives 1 apart at delta 0.5 (hi_0 == lo_1), a tie (1, 1), boundaries 0.5 and 1.5 three
    # times each; index order shuffled.
    iv = intervals_of(torch.tensor([1.0, 2.0, 0.0, 1.0], dtype=torch.float64), 0.5)
    assert iv.bounds.tolist() == [-0.5, 0.5, 0.5, 0.5, 1.5, 1.5, 1.5, 2.5]
    # In ascending order of the centres 0, 1, 1, 2.
    assert iv.k_lo.tolist() == [1, 4, 4, 7]
    assert iv.k_hi.tolist() == [4, 7, 7, 8]
    assert iv.centres_below.tolist() == [[0, 1, 1, 3], [1, 3, 3, 4]]
    ones = torch.ones(4, dtype=torch.float64)
    assert iv.among_centres(ones).tolist() == [1.5, 0.0, 3.0, 1.5]  # index order


@settings(max_examples=60, deadline=None)
@given(case=tied_centres())
def test_counts_match_their_definitions(case):
    centres, delta, _ = case
    iv = intervals_of(centres, delta)
    c = iv.centres
    assert torch.equal(c, torch.sort(centres).values)
    lo, hi = c - delta, c + delta
    assert torch.equal(iv.bounds, torch.sort(torch.cat([lo, hi])).values)
    assert torch.equal(iv.k_lo, (iv.bounds[None, :] <= lo[:, None]).sum(1))
    assert torch.equal(iv.k_hi, (iv.bounds[None, :] <= hi[:, None]).sum(1))
    assert torch.equal(iv.centres_below[0], (c[None, :] < lo[:, None]).sum(1))
    assert torch.equal(iv.centres_below[1], (c[None, :] < hi[:, None]).sum(1))
    inv_width, table = iv.grid()
    cells = table.numel() - 2
    cell = ((iv.bounds - iv.bounds[0]) * inv_width).long().clamp(0, cells)
    below = (cell[None, :] < torch.arange(cells + 2)[:, None]).sum(1)
    assert table.dtype == torch.int32 and torch.equal(table.long(), below)


def dense_relations(x, centres, delta):
    """H(x_j - c_i), shape (P, len(x)), float64."""
    return smoothed_step(np.asarray(x)[None, :] - np.asarray(centres)[:, None], delta)


@settings(max_examples=60, deadline=None)
@given(case=tied_centres())
def test_sums_match_the_dense_relations(case):
    centres, delta, seed = case
    iv = intervals_of(centres, delta)
    rng = np.random.default_rng(seed)
    num_pos = centres.numel()
    weights = torch.tensor(rng.random(num_pos) * 3 - 1)
    c, w = centres.numpy(), weights.numpy()
    span = 1 + float(centres.max()) / delta

    rel = dense_relations(c, c, delta)  # rel[i, k] = H(c_k - c_i)
    ref = (rel - 0.5 * np.eye(num_pos)) @ w
    tol = 1e-12 * np.abs(w).sum() * span
    np.testing.assert_allclose(iv.among_centres(weights).numpy(), ref, rtol=1e-12, atol=tol)

    # Scores on every boundary and centre, beyond both ends and between.
    x = np.concatenate(
        [c - delta, c + delta, c, [-1e4, 1e4], rng.uniform(-2 * delta, c.max() + 2 * delta, 50)]
    )
    xt = torch.tensor(x)
    k = iv.locate(xt)
    coefficients = iv.spread(weights)
    assert coefficients.shape == (2, iv.num_bins)
    assert coefficients[:, [0, iv.dummy]].abs().max() == 0
    got = coefficients[0, k] + coefficients[1, k] * xt
    ref = w @ dense_relations(x, c, delta)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=tol * 2)

    v = rng.random(x.size)
    hist = torch.zeros(2, iv.num_bins, dtype=torch.float64)
    hist[0].index_add_(0, k, torch.tensor(v))
    hist[1].index_add_(0, k, torch.tensor(v) * xt)
    ref = dense_relations(x, c, delta) @ v
    np.testing.assert_allclose(
        iv.relation_sums(hist).numpy(), ref, rtol=1e-12, atol=1e-12 * v.sum() * span
    )


@pytest.mark.skipif(backends.load('cpp') is None, reason='the C++ op is not built')
@settings(max_examples=200, deadline=None)
@given(tied_centres(), st.booleans())
def test_the_cpp_geometry_equals_the_torch_ops(case, hard_step):
    centres, delta, _ = case
    delta = 0.0 if hard_step else delta
    sorted_centres = torch.sort(centres).values
    got = backends.load('cpp').window_geometry(sorted_centres, delta)
    for value, want in zip(got, window_geometry(sorted_centres, delta)):
        assert value.dtype == want.dtype and torch.equal(value, want)


@pytest.mark.skipif(backends.load('cpp') is None, reason='the C++ op is not built')
@settings(max_examples=200, deadline=None)
@given(tied_centres(), st.booleans())
def test_the_cpp_sums_by_interval_equal_the_torch_ops(case, hard_step):
    # relation_sums and spread of the C++ op against ScoreIntervals' torch ops (the same sums
    # in the same order: equal to the bit), on tied centres and boundaries.
    centres, delta, seed = case
    delta = 0.0 if hard_step else delta
    gen = torch.Generator().manual_seed(seed % 2**31)
    ascending = torch.randperm(centres.numel(), generator=gen)
    sorted_centres = torch.sort(centres).values
    reference = ScoreIntervals(sorted_centres, ascending, delta)
    kernels = ScoreIntervals(sorted_centres, ascending, delta, backends.load('cpp'))
    hist = torch.rand(2, reference.num_bins, generator=gen, dtype=torch.float64)
    assert torch.equal(kernels.relation_sums(hist), reference.relation_sums(hist))
    weights = torch.randn(centres.numel(), generator=gen, dtype=torch.float64)
    assert torch.equal(kernels.spread(weights), reference.spread(weights))


@pytest.mark.skipif(backends.load('cpp') is None, reason='the C++ op is not built')
def test_the_cpp_sums_by_interval_name_bad_input():
    op = backends.load('cpp').op
    iv = intervals_of(torch.tensor([0.0, 1.0], dtype=torch.float64), 0.5)
    hist = torch.zeros(2, iv.num_bins, dtype=torch.float64)
    with pytest.raises(RuntimeError, match='hist must have 2P \\+ 2 bins'):
        op.relation_sums(hist[:, :-1].contiguous(), iv.ascending, iv.lo, iv._window, 0.5)
    with pytest.raises(RuntimeError, match='ascending must lie in'):
        op.relation_sums(hist, iv.ascending + 2, iv.lo, iv._window, 0.5)
    with pytest.raises(RuntimeError, match='window must hold non-decreasing'):
        op.relation_sums(hist, iv.ascending, iv.lo, iv._window.flip(0), 0.5)
    with pytest.raises(RuntimeError, match='spread needs 2P \\+ 2 bins'):
        op.spread(torch.ones(2, dtype=torch.float64), iv.ascending, iv.lo, iv._window, 5, 0.5)


def test_bin_counts():
    assert bin_counts(torch.tensor([2, 2, 0]), 4).tolist() == [1, 0, 2, 0]

"""The IoU-restricted sums among positives (alrp_core.missorted) against dense P x P sums, and
the C++ kernel of Rank & Sort Loss's steps among the positives against those torch ops."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alrp_core import backends
from alrp_core.missorted import IoUOrder, MissortedPairs, window_counts
from alrp_core.rank_sort_loss import rank_sort_errors

from .rs_oracle import step

CPP = backends.load('cpp')


@st.composite
def positives(draw):
    """(ascending shifted float64 scores, IoUs, weights (P, 2), errors, delta) with ties."""
    num = draw(st.integers(1, 70))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(['normal', 'ties', 'huge', 'tiny']))
    if kind == 'ties':
        scores = rng.choice(np.array([-1.0, -0.5, 0.0, 0.25, 0.5, 2.0]), size=num)
    else:
        scores = rng.normal(size=num) * {'normal': 1.0, 'huge': 1e4, 'tiny': 1e-7}[kind]
    iou_kind = draw(st.sampled_from(['continuous', 'ties', 'equal']))
    if iou_kind == 'continuous':
        ious = rng.random(num)
    elif iou_kind == 'ties':
        ious = rng.choice(np.array([0.0, 0.3, 0.5, 0.7, 1.0]), size=num)
    else:
        ious = np.full(num, 0.6)
    order = np.argsort(scores, kind='stable')
    scores, ious = scores[order] - scores[order][0], ious[order]
    weights = rng.normal(size=(num, 2))
    errors = rng.normal(size=num)
    delta = draw(st.sampled_from([0.0, 0.05, 0.5, 2.0]))
    return scores, ious, weights, errors, delta


def dense_sums(scores, ious, weights, errors, delta):
    rel = step(scores[None, :] - scores[:, None], delta)  # rel[i, k] = H(s_k - s_i)
    lower = rel * (ious[None, :] < ious[:, None])  # [y_k < y_i]
    ones = np.ones((len(scores), 1))
    columns = np.concatenate([ones, weights], 1)
    return rel @ columns, lower @ columns, lower.T @ errors


@settings(max_examples=150, deadline=None)
@given(case=positives())
def test_sums_equal_the_dense_ones(case):
    scores, ious, weights, errors, delta = case
    counts = None
    if delta > 0 and len(scores) % 2:  # a caller's counts: below s_i - delta, as good as <=
        below = np.searchsorted(scores, np.stack([scores - delta, scores + delta]), 'left')
        counts = torch.from_numpy(below)
    pairs = MissortedPairs(torch.from_numpy(scores), torch.from_numpy(ious), delta, counts)
    want_all, want_lower, want_spread = dense_sums(scores, ious, weights, errors, delta)
    scale = 1 + np.abs(scores).max() / max(delta, 1e-3)
    tol = dict(rtol=1e-9, atol=1e-10 * len(scores) * scale)
    np.testing.assert_allclose(pairs.among_all(torch.from_numpy(weights)).numpy(), want_all, **tol)
    np.testing.assert_allclose(
        pairs.among_lower(torch.from_numpy(weights)).numpy(), want_lower, **tol
    )
    np.testing.assert_allclose(
        pairs.spread_to_lower(torch.from_numpy(errors)).numpy(),
        want_spread,
        rtol=1e-9,
        atol=1e-10 * len(scores) * scale * np.abs(errors).max(),
    )


def test_hand_computed_pairs():
    # Scores 0, 0, 1 (delta 0.5: H(0) = 1/2, H(1) = 1, H(-1) = 0), IoUs 0.5, 0.8, 0.5.
    scores = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    ious = torch.tensor([0.5, 0.8, 0.5], dtype=torch.float64)
    pairs = MissortedPairs(scores, ious, 0.5)
    ones = torch.ones(3, 1, dtype=torch.float64)
    # Positive 0: k = 0, 1 tie (1/2 each), k = 2 above (1).
    assert pairs.among_all(ones)[:, 0].tolist() == [2.0, 2.0, 0.5]
    # Below its IoU: positive 1 (0.8) has 0 (tied score, 1/2) and 2 (above, 1); none else.
    assert pairs.among_lower(ones)[:, 0].tolist() == [0.0, 1.5, 0.0]
    # Spread from positive 1 (c = 2) to 0 (H = 1/2) and 2 (H = 1).
    errors = torch.tensor([5.0, 2.0, 7.0], dtype=torch.float64)
    assert pairs.spread_to_lower(errors).tolist() == [1.0, 0.0, 2.0]
    # The hard step: a tie counts 1.
    hard = MissortedPairs(scores, ious, 0.0)
    assert hard.among_all(ones)[:, 0].tolist() == [3.0, 3.0, 1.0]
    assert hard.among_lower(ones)[:, 0].tolist() == [0.0, 2.0, 0.0]
    assert hard.spread_to_lower(errors).tolist() == [2.0, 0.0, 2.0]


def test_iou_order_and_window_counts():
    by_iou = IoUOrder(torch.tensor([0.5, 0.1, 0.5, 1.0, 0.1]))
    assert by_iou.ranks.tolist() == [1, 0, 1, 2, 0]
    assert by_iou.below(torch.ones(5, 1))[:, 0].tolist() == [2, 0, 2, 4, 0]
    scores = torch.tensor([0.0, 0.5, 0.5, 1.0, 3.0], dtype=torch.float64)
    lo, hi = window_counts(scores, 0.5)
    assert lo.tolist() == [0, 1, 1, 3, 4]  # s_k <= s_i - 0.5
    assert hi.tolist() == [1, 3, 3, 4, 5]  # s_k < s_i + 0.5
    lo, hi = window_counts(scores, 0.0)
    assert lo.tolist() == [1, 3, 3, 4, 5] and hi.tolist() == [0, 1, 1, 3, 4]


@pytest.mark.parametrize('num', [1, 2, 1000])
def test_no_pair_with_equal_ious(num):
    # Equal IoUs: no positive is below another.
    scores = torch.sort(torch.rand(num, dtype=torch.float64)).values
    pairs = MissortedPairs(scores, torch.full((num,), 0.7, dtype=torch.float64), 0.5)
    assert not pairs.among_lower(torch.ones(num, 1, dtype=torch.float64)).any()
    assert not pairs.spread_to_lower(torch.ones(num, dtype=torch.float64)).any()


def caller_counts(scores, delta):
    """The window counts a caller hands over for delta > 0: the scores below s_i -/+ delta."""
    return torch.from_numpy(
        np.searchsorted(scores, np.stack([scores - delta, scores + delta]), 'left')
    )


@pytest.mark.skipif(CPP is None, reason='the C++ op is not built')
@settings(max_examples=150, deadline=None)
@given(case=positives(), eps=st.sampled_from([0.0, 1e-10, 0.3]))
def test_the_kernel_of_the_steps_equals_the_torch_ops(case, eps):
    scores, ious, _, errors, delta = case
    fp = np.abs(errors) * 3 * (np.arange(len(scores)) % 3 > 0)  # some FP(i) = 0
    args = [torch.from_numpy(a) for a in (scores, ious, fp)]
    scale = 1 + np.abs(scores).max() / max(delta, 1e-3)
    tol = dict(rtol=1e-9, atol=1e-10 * len(scores) * scale)
    counts = [None] + ([caller_counts(scores, delta)] if delta > 0 else [])
    for given_counts in counts:
        means, per_positive = CPP.rank_sort_errors(*args, delta, eps, given_counts)
        want_means, want = rank_sort_errors(*args, delta, eps, given_counts)
        np.testing.assert_allclose(means.numpy(), want_means.numpy(), **tol)
        np.testing.assert_allclose(per_positive.numpy(), want.numpy(), **tol)


@pytest.mark.skipif(CPP is None, reason='the C++ op is not built')
def test_the_kernel_on_hand_computed_positives():
    # Scores 0, 0, 1, IoUs 0.5, 0.8, 0.5, FP 1, 0, 2, delta 0.5 (H(0) = 1/2, H(1) = 1).
    # rank+ = 2, 2, 1/2; ranking errors 1/3, 0 (FP 0: no update), 2 / 2.5 = 0.8. Sorting:
    # positives 0 and 2 have no lower IoU (errors 0); positive 1: l_S = (0.25 + 0.1 + 0.5) / 2,
    # l_S* = 0.1 / 0.5 (itself alone), error 0.225, over mis-sorted H 0.5 (positive 0) + 1
    # (positive 2) = 1.5: it spreads 0.225 / 1.5 / 3 = 0.05 by H, 0.025 to 0 and 0.05 to 2.
    scores = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    ious = torch.tensor([0.5, 0.8, 0.5], dtype=torch.float64)
    fp = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)
    means, per_positive = CPP.rank_sort_errors(scores, ious, fp, 0.5, 1e-10, None)
    want = torch.tensor([(1 / 3 + 0.8) / 3, 0.225 / 3], dtype=torch.float64)
    torch.testing.assert_close(means, want)
    want = torch.tensor(
        [
            [1 / 9, 0.0, 0.8 / 2 / 3],
            [-1 / 9, 0.0, -0.8 / 3],
            [0.025, -0.225 / 3, 0.05],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(per_positive, want)


@pytest.mark.skipif(CPP is None, reason='the C++ op is not built')
@pytest.mark.parametrize(
    'num, counts, message',
    [
        (0, None, 'at least one positive'),
        (3, torch.tensor([[0, 2, 1], [1, 1, 3]]), r'0 <= lo <= hi <= 3'),
        (3, torch.tensor([[0, 1, 1], [1, 3, 4]]), r'0 <= lo <= hi <= 3'),
        (3, torch.tensor([[0, 1, 0], [1, 3, 3]]), 'counts must not decrease'),
        (3, torch.zeros(2, 2, dtype=torch.long), r'counts must be a contiguous \(2, 3\)'),
    ],
)
def test_the_kernel_names_bad_input(num, counts, message):
    values = torch.zeros(num, dtype=torch.float64)
    with pytest.raises(RuntimeError, match=message):
        CPP.rank_sort_errors(values, values, values, 0.5, 0.0, counts)

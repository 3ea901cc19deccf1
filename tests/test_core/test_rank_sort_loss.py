"""Rank & Sort Loss (alrp_core.rs_loss) on each backend against the dense float64 oracle."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alrp_core import backends, rs_loss
from alrp_core.options import ranking_options

from .rs_oracle import rs_oracle
from .strategies import ranking_batches

CPU = torch.device('cpu')
FIXTURES = [HealthCheck.function_scoped_fixture]
# On a CPU the Triton kernels run in Triton's interpreter, which must be on before triton is
# imported: those cases run in a child pytest (test_triton_kernels_in_the_interpreter).
TRITON_INTERPRETED = os.environ.get('TRITON_INTERPRET') == '1'


def backends_to_test():
    names = [name for name in ('torch', 'cpp') if name in backends.available_backends(CPU)]
    return names + (['triton'] if TRITON_INTERPRETED else [])


@pytest.fixture(params=backends_to_test())
def backend(request):
    with ranking_options(backend=request.param):
        yield request.param


@pytest.mark.skipif(
    TRITON_INTERPRETED or backends.load('triton') is None,
    reason='the Triton cases run in this process (or no triton >= 3.0)',
)
def test_triton_kernels_in_the_interpreter():
    run = subprocess.run(
        [sys.executable, '-m', 'pytest', __file__, '-o', 'addopts=', '-q']
        + ['-p', 'no:cacheprovider', '-k', 'triton'],
        env=dict(os.environ, TRITON_INTERPRET='1', CUDA_VISIBLE_DEVICES=''),
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert ' passed' in run.stdout and ' failed' not in run.stdout


@st.composite
def rs_batches(draw, dtype=torch.float32, min_pos=1):
    """(scores, targets, ious, delta): the core's batches (ties, ignored labels, huge and tiny
    scales) with IoU targets (continuous, few values with ties, all equal, 0 and 1) and delta in
    {0 (the hard step), 0.05, 0.5, 1, 2.5}."""
    scores, targets, _, _ = draw(ranking_batches(min_pos=min_pos, dtype=dtype))
    num_pos = int((targets == 1).sum())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(['continuous', 'ties', 'equal', 'extremes']))
    if kind == 'continuous':
        ious = rng.random(num_pos)
    elif kind == 'ties':
        ious = rng.choice(np.array([0.1, 0.4, 0.55, 0.8]), size=num_pos)
    elif kind == 'equal':
        ious = np.full(num_pos, 0.7)
    else:
        ious = rng.choice(np.array([0.0, 1.0, 0.5]), size=num_pos)
    iou_dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    delta = draw(st.sampled_from([0.0, 0.05, 0.5, 1.0, 2.5]))
    return scores, targets, torch.tensor(ious, dtype=iou_dtype), delta


def run_rs(scores, targets, ious, delta, eps=1e-10):
    """loss_rank, loss_sort and the gradients that each of them carries, on the logits."""
    logits = scores.clone().requires_grad_(True)
    loss_rank, loss_sort = rs_loss(logits, targets, ious, delta, eps)
    grad_rank = torch.autograd.grad(loss_rank, logits, retain_graph=True)[0]
    grad_sort = torch.autograd.grad(loss_sort, logits)[0]
    return loss_rank, loss_sort, grad_rank, grad_sort


def assert_matches_oracle(scores, targets, ious, delta, rtol, eps=1e-10):
    got = run_rs(scores, targets, ious, delta, eps)
    want = rs_oracle(
        scores.double().numpy(), targets.long().numpy(), ious.double().numpy(), delta, eps
    )
    for value, ref in zip(got[:2], want[:2]):
        np.testing.assert_allclose(float(value), ref, rtol=rtol, atol=rtol)
    for grad, ref in zip(got[2:], want[2:]):
        np.testing.assert_allclose(
            grad.double().numpy(), ref, rtol=rtol, atol=rtol * max(np.abs(ref).max(), 1e-3)
        )
    return got


@settings(
    max_examples=8 if TRITON_INTERPRETED else 60, deadline=None, suppress_health_check=FIXTURES
)
@given(batch=rs_batches())
def test_each_backend_matches_the_oracle(batch, backend, filter_negatives):
    assert_matches_oracle(*batch, rtol=1e-5)


@settings(
    max_examples=4 if TRITON_INTERPRETED else 25, deadline=None, suppress_health_check=FIXTURES
)
@given(batch=rs_batches(dtype=torch.float64))
def test_each_backend_in_float64(batch, backend):
    loss_rank, _, grad_rank, _ = assert_matches_oracle(*batch, rtol=1e-6)
    assert loss_rank.dtype == grad_rank.dtype == torch.float64


def hand_batch():
    # Positives at 1 (IoU 0.5) and 0 (IoU 0.9), a negative at 0.5, one far below, an ignored
    # logit above all.
    scores = torch.tensor([1.0, 0.5, 0.0, -10.0, 5.0])
    targets = torch.tensor([1, 0, 1, 0, -1])
    return scores, targets, torch.tensor([0.5, 0.9])


def test_hand_computed_values(backend):
    # delta 0.5: H(x) = clamp(x + 1/2, 0, 1). Positive a (s = 1): rank+ = H(0) = 1/2, FP = 0.
    # Positive b (s = 0): rank+ = H(1) + H(0) = 3/2, FP = H(0.5) = 1, l_R = 1 / (5/2) = 2/5.
    # l_S(b) = (H(1) * 0.5 + H(0) * 0.1) / (3/2) = 11/30, l_S*(b) = H(0) * 0.1 / H(0) = 1/10:
    # sorting error 4/15, mis-sorted mass m_ba = H(1) = 1; a is sorted (error 0).
    loss_rank, loss_sort, grad_rank, grad_sort = run_rs(*hand_batch(), 0.5)
    assert float(loss_rank) == pytest.approx(1 / 5, abs=1e-7)
    assert float(loss_sort) == pytest.approx(2 / 15, abs=1e-7)
    # Divided by P = 2: b gets -l_R / 2, the negative H(0.5) l_R / FP / 2; the sorting update
    # -4/15 / 2 on b and +4/15 / 2 on a.
    np.testing.assert_allclose(grad_rank.numpy(), [0, 1 / 5, -1 / 5, 0, 0], atol=1e-7)
    np.testing.assert_allclose(grad_sort.numpy(), [2 / 15, 0, -2 / 15, 0, 0], atol=1e-7)


def test_hand_computed_values_with_the_hard_step(backend):
    # delta 0: H(x) = [x >= 0], a tie counts 1. a: rank+ = 1, FP = 0. b: rank+ = 2, FP = 1,
    # l_R = 1/3; l_S(b) = (0.5 + 0.1) / 2, l_S*(b) = 0.1: sorting error 1/5, m_ba = 1.
    loss_rank, loss_sort, grad_rank, grad_sort = run_rs(*hand_batch(), 0.0)
    assert float(loss_rank) == pytest.approx(1 / 6, abs=1e-7)
    assert float(loss_sort) == pytest.approx(1 / 10, abs=1e-7)
    np.testing.assert_allclose(grad_rank.numpy(), [0, 1 / 6, -1 / 6, 0, 0], atol=1e-7)
    np.testing.assert_allclose(grad_sort.numpy(), [1 / 10, 0, -1 / 10, 0, 0], atol=1e-7)
    # A negative tied with a positive counts for it (H(0) = 1), one just below does not.
    scores = torch.tensor([0.0, 0.0, -1e-6])
    loss_rank, _, grad_rank, _ = run_rs(scores, torch.tensor([1, 0, 0]), torch.ones(1), 0.0)
    assert float(loss_rank) == pytest.approx(1 / 2)
    np.testing.assert_allclose(grad_rank.numpy(), [-1 / 2, 1 / 2, 0], atol=1e-7)


def test_one_positive(backend):
    scores = torch.tensor([0.3, 0.1, 0.6, -4.0])
    got = assert_matches_oracle(scores, torch.tensor([0, 1, 0, 0]), torch.tensor([0.4]), 0.5, 1e-6)
    assert float(got[1]) == 0 and not got[3].any()  # nothing to sort


def test_no_relevant_negative(backend, filter_negatives):
    scores = torch.tensor([5.0, 6.0, -3.0, -10.0, 3.9, 4.2])
    targets = torch.tensor([1, 1, 0, 0, 0, -1])
    loss_rank, loss_sort, grad_rank, grad_sort = assert_matches_oracle(
        scores, targets, torch.tensor([0.9, 0.3]), 0.5, 1e-6
    )
    assert float(loss_rank) == 0 and not grad_rank.any()
    assert float(loss_sort) > 0 and grad_sort[0] < 0 < grad_sort[1]


@pytest.mark.parametrize('labels', [[-1, -1, -1], [0, 0, -1], []])
def test_no_positive(backend, labels):
    logits = torch.randn(len(labels), requires_grad=True)
    loss_rank, loss_sort = rs_loss(logits, torch.tensor(labels, dtype=torch.long), torch.zeros(0))
    assert float(loss_rank) == 0 and float(loss_sort) == 0
    (loss_rank + loss_sort).backward()
    assert logits.grad is not None and not logits.grad.any()


def test_each_part_scales_its_own_update(backend):
    gen = torch.Generator().manual_seed(3)
    scores = torch.randn(400, generator=gen)
    targets = (torch.rand(400, generator=gen) < 0.1).long()
    ious = torch.rand(int(targets.sum()), generator=gen)
    _, _, want_rank, want_sort = rs_oracle(scores.double().numpy(), targets.numpy(), ious)
    for rank_weight, sort_weight in [(1.0, 1.0), (2.0, -0.5), (0.0, 1.0), (1.0, 0.0)]:
        logits = scores.clone().requires_grad_(True)
        loss_rank, loss_sort = rs_loss(logits, targets, ious)
        parts = [(rank_weight, loss_rank), (sort_weight, loss_sort)]
        sum(weight * part for weight, part in parts if weight).backward()
        want = rank_weight * want_rank + sort_weight * want_sort
        np.testing.assert_allclose(logits.grad.double().numpy(), want, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(backend, dtype):
    gen = torch.Generator().manual_seed(5)
    scores = torch.randn(300, generator=gen).to(dtype)
    targets = (torch.rand(300, generator=gen) < 0.1).long()
    ious = torch.rand(int(targets.sum()), generator=gen).to(dtype)
    logits = scores.clone().requires_grad_(True)
    loss_rank, loss_sort = rs_loss(logits, targets, ious)
    assert loss_rank.dtype == loss_sort.dtype == torch.float32
    (loss_rank + loss_sort).backward()
    assert logits.grad.dtype == dtype
    want = rs_oracle(scores.double().numpy(), targets.numpy(), ious.double().numpy())
    np.testing.assert_allclose([float(loss_rank), float(loss_sort)], want[:2], rtol=1e-5)
    ref = want[2] + want[3]
    # The update in float32, rounded to the logits' dtype.
    np.testing.assert_allclose(
        logits.grad.double().numpy(), ref, rtol=1e-2, atol=1e-2 * np.abs(ref).max()
    )


def test_under_autocast(backend):
    gen = torch.Generator().manual_seed(6)
    features = torch.randn(200, 8, generator=gen)
    layer = torch.nn.Linear(8, 1)
    targets = (torch.rand(200, generator=gen) < 0.1).long()
    ious = torch.rand(int(targets.sum()), generator=gen)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        logits = layer(features).squeeze(1)
        assert logits.dtype == torch.bfloat16
        loss_rank, loss_sort = rs_loss(logits, targets, ious)
    assert loss_rank.dtype == torch.float32
    want = rs_oracle(logits.detach().double().numpy(), targets.numpy(), ious.numpy())
    np.testing.assert_allclose([float(loss_rank), float(loss_sort)], want[:2], rtol=1e-5)
    (loss_rank + loss_sort).backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_kernels_agree_with_the_torch_ops(backend):
    # Many chunks of the C++ op, many levels of the IoU sums (P ~ 2000), a late-training mix.
    gen = torch.Generator().manual_seed(7)
    m = 200000 if backend != 'triton' else 20000
    scores = torch.randn(m, generator=gen) * 2
    targets = (torch.rand(m, generator=gen) < 0.01).long()
    targets[torch.rand(m, generator=gen) < 0.03] = -1
    scores[(targets == 0) & (torch.rand(m, generator=gen) < 0.9)] -= 8
    ious = torch.rand(int((targets == 1).sum()), generator=gen)
    got = run_rs(scores, targets, ious, 0.5)
    with ranking_options(backend='torch'):
        ref = run_rs(scores, targets, ious, 0.5)
    for value, want in zip(got, ref):
        torch.testing.assert_close(value, want, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    'ious, message',
    [
        (torch.tensor([1, 0]), 'ious must be a floating-point tensor'),
        ([0.5, 0.5], 'ious must be a torch.Tensor'),
        (torch.rand(2, 1), 'ious must be one-dimensional'),
        (torch.rand(3), r'ious has 3 elements but targets has 2 positives'),
        (torch.tensor([0.5, 1.5]), r'ious outside \[0, 1\] \(found 0.5 to 1.5\)'),
        (torch.tensor([-0.1, 0.5]), r'ious outside \[0, 1\]'),
        (torch.tensor([float('nan'), 0.5]), 'NaN or Inf in ious'),
    ],
)
def test_bad_ious_are_named(ious, message):
    with pytest.raises(ValueError, match=message):
        rs_loss(torch.zeros(3), torch.tensor([1, 1, 0]), ious)


def test_bad_hyperparameters_are_named():
    args = torch.zeros(2), torch.tensor([1, 0]), torch.ones(1)
    with pytest.raises(ValueError, match='delta must be >= 0'):
        rs_loss(*args, delta=-0.1)
    with pytest.raises(ValueError, match='eps must be >= 0'):
        rs_loss(*args, eps=-1e-3)
    with pytest.raises(ValueError, match='delta must be finite'):
        rs_loss(*args, delta=float('inf'))
    with pytest.raises(ValueError, match='NaN or Inf in logits'):
        rs_loss(torch.tensor([float('nan'), 0.0]), *args[1:])


def test_no_second_derivative():
    logits = torch.randn(20, requires_grad=True)
    targets = torch.tensor([1, 0] * 10)
    loss_rank, loss_sort = rs_loss(logits, targets, torch.rand(10))
    (grad,) = torch.autograd.grad(loss_rank + loss_sort, logits, create_graph=True)
    with pytest.raises(RuntimeError, match='no second derivative'):
        grad.sum().backward()


def test_tied_positives_with_the_hard_step(backend, filter_negatives):
    # delta 0 with every positive tied: the intervals' boundaries span nothing; negatives tied
    # with them count (H(0) = 1), the others are above or below all.
    scores = torch.tensor([0.25] * 4 + [0.25, 0.25, 0.2, 3.0, -2.0, 0.2500001])
    targets = torch.tensor([1] * 4 + [0] * 6)
    ious = torch.tensor([0.3, 0.9, 0.3, 0.6])
    assert_matches_oracle(scores, targets, ious, 0.0, rtol=1e-6)


@pytest.mark.parametrize('delta', [0.0, 0.5])
def test_interval_sums_among_centres_and_spread(delta):
    # The shared interval geometry for both steps: the relations among the positives (the
    # self term is H(0)) and the spread of weights onto any score.
    from alrp_core.intervals import ScoreIntervals

    from .rs_oracle import step

    centres = torch.tensor([0.0, 0.0, 0.5, 1.0, 2.5], dtype=torch.float64)
    weights = torch.tensor([1.0, -2.0, 0.5, 3.0, 1.5], dtype=torch.float64)
    intervals = ScoreIntervals(centres, torch.arange(5), delta)
    rel = step(centres.numpy()[None, :] - centres.numpy()[:, None], delta)
    want = rel @ weights.numpy() - np.diag(rel) * weights.numpy()
    np.testing.assert_allclose(intervals.among_centres(weights).numpy(), want, atol=1e-12)
    x = torch.tensor([-3.0, -0.5, 0.0, 0.2, 0.5, 0.75, 1.0, 2.0, 2.5, 9.0], dtype=torch.float64)
    offset, slope = intervals.spread(weights)
    k = intervals.locate(x)
    got = offset[k] + slope[k] * x
    want = step(x.numpy()[:, None] - centres.numpy()[None, :], delta) @ weights.numpy()
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)

"""aLRP Loss against the dense float64 oracle, hand-computed cases and its invariants."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from alrp_core import alrp_loss
from mmdet_alrp.models.losses import aLRPLoss

from ...test_core.oracle import alrp_oracle
from ...test_core.strategies import ranking_batches


def run(scores, targets, errors, delta=1.0, eps=1e-5):
    logits = scores.clone().requires_grad_(True)
    e = errors.clone().requires_grad_(True)
    loss_cls, loss_loc = alrp_loss(logits, targets, e, delta, eps)
    (loss_cls + loss_loc).backward()
    return loss_cls, loss_loc, logits.grad, e.grad


def assert_matches_oracle(scores, targets, errors, delta, rtol):
    loss_cls, loss_loc, grad, grad_e = run(scores, targets, errors, delta)
    ref_cls, ref_loc, ref_grad, ref_grad_e = alrp_oracle(
        scores.double().numpy(), targets.numpy().astype(np.int64), errors.double().numpy(), delta
    )
    assert loss_cls.item() == pytest.approx(ref_cls, rel=rtol, abs=rtol)
    assert loss_loc.item() == pytest.approx(ref_loc, rel=rtol, abs=rtol)
    scale = max(np.abs(ref_grad).max(initial=0), 1e-12)
    np.testing.assert_allclose(
        grad.double().numpy().reshape(-1), ref_grad, rtol=rtol, atol=rtol * scale
    )
    np.testing.assert_allclose(
        grad_e.double().numpy(),
        ref_grad_e,
        rtol=rtol,
        atol=rtol * max(np.abs(ref_grad_e).max(initial=0), 1e-12),
    )
    return loss_cls, grad


def test_hand_computed_case():
    # positives at 0 and 1, negatives at 0.5 and -2, one ignored at 5; delta = 1.
    # H(0.5 - 0) = 0.75, H(-2 - 0) = 0, H(1 - 0) = 1; H(0.5 - 1) = 0.25, H(0 - 1) = 0.
    # positive a (s=0, e=0.2): rank+ = 2, FP = 0.75, rank = 2.75
    # positive b (s=1, e=0.4): rank+ = 1, FP = 0.25, rank = 1.25
    scores = torch.tensor([0.0, 1.0, 0.5, -2.0, 5.0])
    targets = torch.tensor([1, 1, 0, 0, -1])
    errors = torch.tensor([0.2, 0.4])
    loss_cls, loss_loc, grad, grad_e = run(scores, targets, errors)
    assert loss_cls.item() == pytest.approx(1 - (2 / 2.75 + 1 / 1.25) / 2)
    # descending order b, a: cumsum(e) = 0.4, 0.6 over ranks 1.25, 2.75
    assert loss_loc.item() == pytest.approx((0.4 / 1.25 + 0.6 / 2.75) / 2)
    g_a = -(1.0 * 0.4 + 0.75) / 2.75
    g_b = -(0.0 * 0.2 + 0.25) / 1.25
    g_neg = 0.75 * -g_a / 0.75 + 0.25 * -g_b / 0.25
    expected = torch.tensor([g_a, g_b, g_neg, 0.0, 0.0]) / 2
    torch.testing.assert_close(grad, expected)
    torch.testing.assert_close(grad_e, torch.tensor([1 / 2.75, 1 / 1.25 + 1 / 2.75]) / 2)


@settings(max_examples=150, deadline=None)
@given(ranking_batches(with_errors=True))
def test_matches_dense_oracle(batch):
    scores, targets, errors, delta = batch
    assert_matches_oracle(scores, targets, errors, delta, rtol=2e-5)


@settings(max_examples=60, deadline=None)
@given(ranking_batches(with_errors=True, dtype=torch.float64))
def test_float64_is_exact(batch):
    scores, targets, errors, delta = batch
    # float64 rounding of logits up to 1e5 against delta down to 0.05 stays near 1e-9
    assert_matches_oracle(scores, targets, errors, delta, rtol=1e-7)


@settings(max_examples=100, deadline=None)
@given(ranking_batches(with_errors=True, min_pos=1))
def test_range_and_balance(batch):
    scores, targets, errors, delta = batch
    loss_cls, _, grad, _ = run(scores, targets, errors, delta)
    assert 0 <= loss_cls.item() <= 1
    pos_sum = grad[targets == 1].double().sum()
    neg_sum = grad[targets == 0].double().sum()
    assert (grad[targets == 1] <= 0).all() and (grad[targets == 0] >= 0).all()
    assert pos_sum.item() == pytest.approx(-neg_sum.item(), rel=1e-5, abs=1e-6)
    assert (grad[targets == -1] == 0).all()


def test_bool_targets_and_any_shape():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(6, 7, generator=gen)
    targets = torch.rand(6, 7, generator=gen) < 0.2
    errors = torch.rand(int(targets.sum()), generator=gen)
    ref = alrp_loss(scores.reshape(-1), targets.reshape(-1).long(), errors)
    out = alrp_loss(scores, targets, errors)
    torch.testing.assert_close(out, ref)


def test_large_batch_matches_oracle():
    gen = torch.Generator().manual_seed(3)
    scores = torch.randn(40000, generator=gen) * 3
    targets = (torch.rand(40000, generator=gen) < 0.003).long()
    targets[torch.rand(40000, generator=gen) < 0.05] = -1
    errors = torch.rand(int((targets == 1).sum()), generator=gen)
    assert_matches_oracle(scores, targets, errors, 1.0, rtol=1e-5)


def test_streaming_over_chunks_matches_one_pass():
    from alrp_core.options import ranking_options

    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(5000, generator=gen)
    targets = (torch.rand(5000, generator=gen) < 0.01).long()
    errors = torch.rand(int(targets.sum()), generator=gen)
    with ranking_options(backend='torch'):  # the path that streams in chunks
        whole = run(scores, targets, errors)
        with ranking_options(torch_chunk=333):
            chunked = run(scores, targets, errors)
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_no_gradient_reaches_errors_from_classification():
    scores = torch.tensor([0.3, -0.1, 0.2, 1.0])
    targets = torch.tensor([1, 0, 1, 0])
    errors = torch.tensor([0.5, 0.1], requires_grad=True)
    loss_cls, _ = alrp_loss(scores.requires_grad_(), targets, errors)
    loss_cls.backward()
    assert errors.grad is None or (errors.grad == 0).all()


def test_no_positive_gives_zero_that_backpropagates():
    scores = torch.randn(10, requires_grad=True)
    errors = torch.zeros(0, requires_grad=True)
    loss_cls, loss_loc = alrp_loss(scores, torch.zeros(10, dtype=torch.long), errors)
    (loss_cls + loss_loc).backward()
    assert loss_cls.item() == 0 and loss_loc.item() == 0
    assert (scores.grad == 0).all() and torch.isfinite(scores.grad).all()


def test_all_positives_have_zero_classification_loss():
    scores = torch.randn(5, requires_grad=True)
    loss_cls, loss_loc = alrp_loss(scores, torch.ones(5, dtype=torch.long), torch.rand(5))
    loss_cls.backward()
    assert loss_cls.item() == 0 and (scores.grad == 0).all()
    assert loss_loc.item() > 0


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_inputs_are_computed_in_float32(dtype):
    gen = torch.Generator().manual_seed(2)
    scores = torch.randn(300, generator=gen).to(dtype)
    targets = (torch.rand(300, generator=gen) < 0.05).long()
    errors = torch.rand(int(targets.sum()), generator=gen).to(dtype)
    logits = scores.clone().requires_grad_(True)
    loss_cls, loss_loc = alrp_loss(logits, targets, errors)
    assert loss_cls.dtype == torch.float32 and loss_loc.dtype == torch.float32
    loss_cls.backward()
    assert logits.grad.dtype == dtype
    ref_cls, ref_loc, ref_grad, _ = alrp_oracle(
        scores.double().numpy(), targets.numpy(), errors.double().numpy()
    )
    assert loss_cls.item() == pytest.approx(ref_cls, rel=1e-5)
    assert loss_loc.item() == pytest.approx(ref_loc, rel=1e-5)
    np.testing.assert_allclose(logits.grad.double().numpy(), ref_grad, rtol=1e-2, atol=1e-4)


def test_under_autocast():
    gen = torch.Generator().manual_seed(4)
    layer = torch.nn.Linear(4, 1)
    x = torch.randn(200, 4, generator=gen)
    targets = (torch.rand(200, generator=gen) < 0.05).long()
    errors = torch.rand(int(targets.sum()), generator=gen)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        logits = layer(x).squeeze(1)
        assert logits.dtype == torch.bfloat16
        loss_cls, loss_loc = alrp_loss(logits, targets, errors)
    assert loss_cls.dtype == torch.float32
    ref_cls, *_ = alrp_oracle(
        logits.detach().double().numpy(), targets.numpy(), errors.double().numpy()
    )
    assert loss_cls.item() == pytest.approx(ref_cls, rel=1e-5)
    loss_cls.backward()
    assert torch.isfinite(layer.weight.grad).all() and layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    'logits,targets,errors,match',
    [
        (
            torch.tensor([0.0, float('nan')]),
            torch.tensor([1, 0]),
            torch.tensor([0.1]),
            'NaN or Inf in logits',
        ),
        (
            torch.tensor([0.0, float('inf')]),
            torch.tensor([1, 0]),
            torch.tensor([0.1]),
            'NaN or Inf in logits',
        ),
        (
            torch.tensor([0.0, 1.0]),
            torch.tensor([1, 0]),
            torch.tensor([float('nan')]),
            'NaN or Inf in loc_errors',
        ),
        (
            torch.tensor([0.0, 1.0]),
            torch.tensor([1, 0]),
            torch.tensor([-0.5]),
            'negative values in loc_errors',
        ),
        (
            torch.tensor([0.0, 1.0]),
            torch.tensor([1, 1]),
            torch.tensor([0.1]),
            'loc_errors has 1 elements but targets has 2 positives',
        ),
        (
            torch.tensor([0.0, 1.0]),
            torch.tensor([1, 0, 0]),
            torch.tensor([0.1]),
            'targets has 3 elements',
        ),
        (
            torch.tensor([0.0, 1.0]),
            torch.tensor([1, 2]),
            torch.tensor([0.1]),
            r'labels outside \{1, 0, -1\}',
        ),
        (
            torch.tensor([0, 1]),
            torch.tensor([1, 0]),
            torch.tensor([0.1]),
            'logits must be a floating-point',
        ),
        (
            torch.tensor([0.0, 1.0]),
            torch.tensor([1.0, 0.0]),
            torch.tensor([0.1]),
            'targets must be an integer or bool',
        ),
        (
            torch.tensor([0.0, 1.0]),
            torch.tensor([1, 0]),
            torch.tensor([1]),
            'loc_errors must be a floating-point',
        ),
        (
            torch.tensor([0.0, 1.0]),
            torch.tensor([1, 0]),
            [0.1],
            'loc_errors must be a torch.Tensor',
        ),
    ],
)
def test_bad_input_raises_named_error(logits, targets, errors, match):
    with pytest.raises(ValueError, match=match):
        alrp_loss(logits, targets, errors)


def test_bad_delta():
    with pytest.raises(ValueError, match='delta must be positive'):
        alrp_loss(torch.tensor([0.0, 1.0]), torch.tensor([1, 0]), torch.tensor([0.1]), delta=0)


def test_module_scales_both_parts():
    scores = torch.tensor([0.0, 1.0, 0.5])
    targets = torch.tensor([1, 1, 0])
    # errors 1 - GIoU = 0.2, 0.4 (tau 0.5): the unit square against (0, 0, w, 1), GIoU 1 / w
    pred = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    target = torch.tensor([[0.0, 0.0, 1.25, 1.0], [0.0, 0.0, 5 / 3, 1.0]])
    loss = aLRPLoss(loss_weight=0.2, self_balance=dict(type='SelfBalance', init_weight=1.0))
    terms = loss(scores, targets, pred, target)
    ref_cls, ref_loc = alrp_loss(scores, targets, torch.tensor([0.2, 0.4]))
    torch.testing.assert_close(
        (terms['loss_cls'], terms['loss_bbox']), (0.2 * ref_cls, 0.2 * ref_loc)
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(5)
    scores = torch.randn(200000, generator=gen) * 2
    targets = (torch.rand(200000, generator=gen) < 0.002).long()
    targets[torch.rand(200000, generator=gen) < 0.1] = -1
    errors = torch.rand(int((targets == 1).sum()), generator=gen)
    cpu = run(scores, targets, errors)
    gpu = run(scores.cuda(), targets.cuda(), errors.cuda())
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-5, atol=1e-8)


def test_empty_batch():
    logits = torch.zeros(0, 80, requires_grad=True)
    loss_cls, loss_loc = alrp_loss(logits, torch.zeros(0, 80, dtype=torch.long), torch.zeros(0))
    (loss_cls + loss_loc).backward()
    assert loss_cls.item() == 0 and loss_loc.item() == 0 and logits.grad.shape == (0, 80)


BAD_DELTAS = [0, -1.0, float('nan'), float('inf'), 'one']
BAD_EPS = [-1e-3, float('nan'), float('inf'), 'small']


@pytest.mark.parametrize('delta', BAD_DELTAS)
def test_bad_delta_checked_when_built_and_called(delta):
    with pytest.raises(ValueError, match='delta must be'):
        aLRPLoss(delta=delta)
    # also without any positive, where the ranking never reads delta
    with pytest.raises(ValueError, match='delta must be'):
        alrp_loss(torch.tensor([0.0, 1.0]), torch.tensor([0, 0]), torch.zeros(0), delta=delta)


@pytest.mark.parametrize('eps', BAD_EPS)
def test_bad_eps_checked_when_built_and_called(eps):
    with pytest.raises(ValueError, match='eps must be'):
        aLRPLoss(eps=eps)
    with pytest.raises(ValueError, match='eps must be'):
        alrp_loss(torch.tensor([0.0, 1.0]), torch.tensor([1, 0]), torch.tensor([0.1]), eps=eps)


def test_eps_zero_and_tensor_delta_are_accepted():
    """eps = 0 is a valid threshold (a positive with FP = 0 takes no gradient, no 0 / 0)."""
    logits = torch.tensor([2.0, -2.0, 0.0], requires_grad=True)
    loss_cls, _ = alrp_loss(
        logits, torch.tensor([1, 0, 0]), torch.tensor([0.1]), eps=0.0, delta=torch.tensor(0.5)
    )
    loss_cls.backward()
    assert loss_cls.item() == 0 and torch.equal(logits.grad, torch.zeros(3))


@pytest.mark.parametrize('logits', [[0.0, 1.0], np.array([0.0, 1.0]), None])
def test_non_tensor_logits_named_before_use(logits):
    with pytest.raises(ValueError, match='logits must be a torch.Tensor'):
        alrp_loss(logits, torch.tensor([1, 0]), torch.tensor([0.1]))


@pytest.mark.parametrize('targets', [[1, 0], np.array([1, 0])])
def test_non_tensor_targets_named_before_use(targets):
    with pytest.raises(ValueError, match='targets must be a torch.Tensor'):
        alrp_loss(torch.tensor([0.0, 1.0]), targets, torch.tensor([0.1]))


def test_missing_loc_errors_named():
    with pytest.raises(ValueError, match='loc_errors must be a torch.Tensor, got NoneType'):
        alrp_loss(torch.tensor([0.0, 1.0]), torch.tensor([1, 0]), None)

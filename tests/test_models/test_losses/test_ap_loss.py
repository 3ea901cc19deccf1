"""AP Loss against its float64 oracle (the sequential running-maximum formulation)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from alrp_core import ap_loss
from mmdet_alrp.models.losses import APLoss

from ...test_core.oracle import ap_oracle
from ...test_core.strategies import ranking_batches


def run(scores, targets, delta=1.0):
    logits = scores.clone().requires_grad_(True)
    loss = ap_loss(logits, targets, delta)
    loss.backward()
    return loss, logits.grad


def test_hand_computed_case():
    # Ascending: positive a (s=0): rank+ = 2 (b at 1 counts fully), FP = H(0.5) = 0.75,
    # precision 2 / 2.75; positive b (s=1): rank+ = 1, FP = H(-0.5) = 0.25, precision 0.8.
    # Running maximum over ascending scores: a keeps 2/2.75, b takes max(2/2.75, 0.8) = 0.8.
    scores = torch.tensor([0.0, 1.0, 0.5, -3.0])
    targets = torch.tensor([1, 1, 0, -1])
    loss, grad = run(scores, targets)
    prec_a, prec_b = 2 / 2.75, 0.8
    assert loss.item() == pytest.approx(1 - (prec_a + prec_b) / 2)
    g_neg = (0.75 / 2.75 + 0.25 / 1.25) / 2
    torch.testing.assert_close(grad, torch.tensor([-(1 - prec_a), -(1 - prec_b), g_neg * 2, 0]) / 2)


def test_interpolation_raises_low_precision():
    # delta = 0.5. a (s=2) has the negative at 2.5 fully above it: rank+ = 1, FP = 1, precision
    # 1/2. b (s=0): rank+ = 2, FP = 1, precision 2/3. In ascending order b comes first, so a's
    # interpolated precision is max(2/3, 1/2) = 2/3: loss 1/3 (without interpolation 5/12).
    scores = torch.tensor([2.0, 0.0, 2.5])
    targets = torch.tensor([1, 1, 0])
    loss, grad = run(scores, targets, delta=0.5)
    assert loss.item() == pytest.approx(1 / 3)
    # negative: b gives H/rank = 1/3; a gives (1/2) * (1 - 2/3) / (1 - 1/2) = 1/3; over P = 2.
    torch.testing.assert_close(grad, torch.tensor([-1 / 6, -1 / 6, 1 / 3]))


@settings(max_examples=150, deadline=None)
@given(ranking_batches())
def test_matches_oracle(batch):
    scores, targets, _, delta = batch
    loss, grad = run(scores, targets, delta)
    ref, ref_grad = ap_oracle(scores.double().numpy(), targets.numpy(), delta)
    assert loss.item() == pytest.approx(ref, rel=2e-5, abs=2e-6)
    np.testing.assert_allclose(
        grad.double().numpy(),
        ref_grad,
        rtol=2e-5,
        atol=2e-5 * max(np.abs(ref_grad).max(initial=0), 1e-12),
    )


@settings(max_examples=80, deadline=None)
@given(ranking_batches(min_pos=1))
def test_balance_and_range(batch):
    scores, targets, _, delta = batch
    loss, grad = run(scores, targets, delta)
    assert 0 <= loss.item() <= 1
    pos, neg = grad[targets == 1].double().sum(), grad[targets == 0].double().sum()
    assert pos.item() == pytest.approx(-neg.item(), rel=1e-5, abs=1e-6)


def test_no_positive_and_half_inputs():
    scores = torch.randn(8, requires_grad=True)
    loss = ap_loss(scores, torch.zeros(8, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0 and (scores.grad == 0).all()
    half = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float16, requires_grad=True)
    loss = ap_loss(half, torch.tensor([1, 1, 0]))
    assert loss.dtype == torch.float32
    loss.backward()
    assert half.grad.dtype == torch.float16


def test_module_and_errors():
    scores, targets = torch.tensor([0.0, 1.0, 0.5]), torch.tensor([1, 1, 0])
    boxes = torch.zeros(2, 4)  # the two positives' regression, no error
    torch.testing.assert_close(
        APLoss(loss_weight=2.0)(scores, targets, boxes, boxes)['loss_cls'],
        2 * ap_loss(scores, targets),
    )
    with pytest.raises(ValueError, match='NaN or Inf in logits'):
        ap_loss(torch.tensor([0.0, float('nan')]), torch.tensor([1, 0]))
    assert APLoss().use_sigmoid
    with pytest.raises(ValueError, match='AP Loss ranks one sigmoid logit per class'):
        APLoss(use_sigmoid=False)


@pytest.mark.parametrize('delta', [0, -1.0, float('nan'), float('inf'), 'one'])
def test_bad_delta_checked_when_built_and_called(delta):
    with pytest.raises(ValueError, match='delta must be'):
        APLoss(delta=delta)
    with pytest.raises(ValueError, match='delta must be'):  # also without any positive
        ap_loss(torch.tensor([0.0, 1.0]), torch.tensor([0, 0]), delta=delta)


@pytest.mark.parametrize(
    'logits, targets, name',
    [
        ([0.0, 1.0], torch.tensor([1, 0]), 'logits'),
        (np.array([0.0, 1.0]), torch.tensor([1, 0]), 'logits'),
        (torch.tensor([0.0, 1.0]), [1, 0], 'targets'),
    ],
)
def test_non_tensor_inputs_named_before_use(logits, targets, name):
    with pytest.raises(ValueError, match=f'{name} must be a torch.Tensor'):
        ap_loss(logits, targets)

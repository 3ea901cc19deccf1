"""aLRPLoss as a head calls it: head weight, self-balance and logged values on a
hand-computed batch."""

import pytest
import torch

from mmdet_alrp.models.losses import aLRPLoss

# The hand case of the loss tests: positives at 0 and 1 with errors 0.2 and 0.4, negatives at
# 0.5 and -2, one ignored logit; delta = 1 gives ranks 2.75 and 1.25, FP 0.75 and 0.25.
LOGITS = torch.tensor([0.0, 1.0, 0.5, -2.0, 5.0])
TARGETS = torch.tensor([1, 1, 0, 0, -1])
L_CLS = 1 - (2 / 2.75 + 1 / 1.25) / 2
L_LOC = (0.4 / 1.25 + 0.6 / 2.75) / 2
# Boxes with those errors at tau = 0.5, e = 1 - GIoU: the unit square against (0, 0, w, 1) has
# GIoU = IoU = 1 / w, so w = 1.25 gives 0.2 and w = 5 / 3 gives 0.4.
PRED_BOXES = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
TARGET_BOXES = torch.tensor([[0.0, 0.0, 1.25, 1.0], [0.0, 0.0, 5 / 3, 1.0]])


@pytest.mark.parametrize('weight', [1.0, 0.2])
def test_terms_and_logged_values(weight):
    loss = aLRPLoss(loss_weight=weight, self_balance=dict(type='SelfBalance', init_weight=50.0))
    balance = loss.self_balance
    logits = LOGITS.clone().requires_grad_(True)
    terms = loss(logits, TARGETS, PRED_BOXES, TARGET_BOXES)
    assert set(terms) == {'loss_cls', 'loss_bbox', 'alrp_cls', 'alrp_loc', 'sb_weight', 'num_pos'}
    assert terms['loss_cls'].item() == pytest.approx(weight * L_CLS)
    assert terms['loss_bbox'].item() == pytest.approx(weight * 50 * L_LOC)
    assert terms['alrp_cls'].item() == pytest.approx(L_CLS)
    assert terms['alrp_loc'].item() == pytest.approx(L_LOC)
    assert terms['sb_weight'].item() == 50
    assert terms['num_pos'].item() == 2 and terms['num_pos'].is_floating_point()
    # the self-balance sees the unweighted values, whatever the head weight
    torch.testing.assert_close(balance.sums, torch.tensor([L_CLS, L_LOC, 1.0], dtype=torch.float64))
    terms['loss_cls'].backward()
    g_a = -(0.4 + 0.75) / 2.75
    g_b = -0.25 / 1.25
    expected = torch.tensor([g_a, g_b, -g_a - g_b, 0.0, 0.0]) / 2 * weight
    torch.testing.assert_close(logits.grad, expected)


def test_uses_the_loss_modules_delta():
    # delta = 0.25: H(0.5 - 0) = 1, H(0.5 - 1) = 0, H(1 - 0) = 1: ranks 3 and 1, FP 1 and 0
    terms = aLRPLoss(delta=0.25)(LOGITS, TARGETS, PRED_BOXES, TARGET_BOXES)
    assert terms['alrp_cls'].item() == pytest.approx(1 - (2 / 3 + 1) / 2)


def test_no_positive():
    logits = LOGITS.clone().requires_grad_(True)
    terms = aLRPLoss()(
        logits, torch.zeros(5, dtype=torch.long), torch.zeros(0, 4), torch.zeros(0, 4)
    )
    assert terms['loss_cls'].item() == 0 and terms['loss_bbox'].item() == 0
    assert terms['num_pos'].item() == 0
    (terms['loss_cls'] + terms['loss_bbox']).backward()
    assert (logits.grad == 0).all()

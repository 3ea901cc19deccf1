"""alrp_head_loss: head weight, self-balance and logged values on a hand-computed batch."""
import pytest
import torch

from mmdet_alrp.models.losses import SelfBalance, aLRPLoss
from mmdet_alrp.models.utils import alrp_head_loss

# The hand case of the loss tests: positives at 0 and 1 with errors 0.2 and 0.4, negatives at
# 0.5 and -2, one ignored logit; delta = 1 gives ranks 2.75 and 1.25, FP 0.75 and 0.25.
LOGITS = torch.tensor([0.0, 1.0, 0.5, -2.0, 5.0])
TARGETS = torch.tensor([1, 1, 0, 0, -1])
ERRORS = torch.tensor([0.2, 0.4])
L_CLS = 1 - (2 / 2.75 + 1 / 1.25) / 2
L_LOC = (0.4 / 1.25 + 0.6 / 2.75) / 2


@pytest.mark.parametrize('weight', [1.0, 0.2])
def test_terms_and_logged_values(weight):
    balance = SelfBalance(init_weight=50.)
    logits = LOGITS.clone().requires_grad_(True)
    terms = alrp_head_loss(aLRPLoss(loss_weight=weight), balance, logits, TARGETS, ERRORS)
    assert set(terms) == {'loss_cls', 'loss_bbox', 'alrp_cls', 'alrp_loc', 'sb_weight',
                          'num_pos'}
    assert terms['loss_cls'].item() == pytest.approx(weight * L_CLS)
    assert terms['loss_bbox'].item() == pytest.approx(weight * 50 * L_LOC)
    assert terms['alrp_cls'].item() == pytest.approx(L_CLS)
    assert terms['alrp_loc'].item() == pytest.approx(L_LOC)
    assert terms['sb_weight'].item() == 50
    assert terms['num_pos'].item() == 2 and terms['num_pos'].is_floating_point()
    # the self-balance sees the unweighted values, whatever the head weight
    torch.testing.assert_close(balance.sums,
                               torch.tensor([L_CLS, L_LOC, 1.], dtype=torch.float64))
    terms['loss_cls'].backward()
    g_a = -(0.4 + 0.75) / 2.75
    g_b = -0.25 / 1.25
    expected = torch.tensor([g_a, g_b, -g_a - g_b, 0., 0.]) / 2 * weight
    torch.testing.assert_close(logits.grad, expected)


def test_uses_the_loss_modules_delta():
    # delta = 0.25: H(0.5 - 0) = 1, H(0.5 - 1) = 0, H(1 - 0) = 1: ranks 3 and 1, FP 1 and 0
    terms = alrp_head_loss(aLRPLoss(delta=0.25), SelfBalance(), LOGITS, TARGETS, ERRORS)
    assert terms['alrp_cls'].item() == pytest.approx(1 - (2 / 3 + 1) / 2)


def test_no_positive():
    logits = LOGITS.clone().requires_grad_(True)
    terms = alrp_head_loss(aLRPLoss(), SelfBalance(), logits, torch.zeros(5, dtype=torch.long),
                           torch.zeros(0))
    assert terms['loss_cls'].item() == 0 and terms['loss_bbox'].item() == 0
    assert terms['num_pos'].item() == 0
    (terms['loss_cls'] + terms['loss_bbox']).backward()
    assert (logits.grad == 0).all()

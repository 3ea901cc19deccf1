"""RankSortLoss against the dense float64 oracle of tests/test_models/rs_loss_oracle.py: its
values, the gradients to the logits and to the predicted boxes, the score-weighted GIoU loss,
the self-balance (a tensor operation), batches without positives, and its arguments."""

import math

import pytest
import torch

from mmdet.registry import MODELS
from mmdet_alrp.models.losses import RankSortLoss

from ..rs_loss_oracle import iou_and_giou, rs_module_oracle, rs_oracle


def batch(seed: int, num_priors: int = 40, num_classes: int = 3, num_pos: int = 6):
    """Logits (A, C) with ties, labels with an ignored prior, and the positives' boxes: target
    boxes and predictions around them (one disjoint from its target: IoU 0)."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_priors, num_classes, generator=gen) * 2
    logits[5] = logits[3]  # tied scores
    labels = torch.zeros(num_priors, num_classes, dtype=torch.int8)
    rows = torch.randperm(num_priors - 1, generator=gen)[:num_pos] + 1
    labels[rows, torch.randint(0, num_classes, (num_pos,), generator=gen)] = 1
    labels[0] = -1
    corner = torch.rand(num_pos, 2, generator=gen) * 50
    targets = torch.cat([corner, corner + 10 + torch.rand(num_pos, 2, generator=gen) * 40], 1)
    preds = targets + torch.randn(num_pos, 4, generator=gen) * 5
    preds[:, 2:] = torch.maximum(preds[:, 2:], preds[:, :2] + 1)
    preds[0] = targets[0] + 200  # misses its target
    return logits.requires_grad_(), labels, preds.requires_grad_(), targets


CASES = [
    pytest.param(dict(), 1, id='defaults'),
    pytest.param(dict(delta=1.0, loss_weight=0.2), 2, id='delta-1-weight-0.2'),
    pytest.param(dict(delta=0.25), 3, id='delta-0.25'),
    pytest.param(dict(delta=0.0), 4, id='hard-step'),
]


@pytest.mark.parametrize('args,seed', CASES)
def test_values_and_gradients_match_the_oracle(args, seed):
    logits, labels, preds, targets = batch(seed)
    losses = RankSortLoss(**args)(logits, labels, preds, targets)
    expected = rs_module_oracle(logits, labels, preds, targets, **args)
    assert set(losses) == {
        'loss_rank',
        'loss_sort',
        'loss_bbox',
        'giou_error',
        'sb_weight',
        'mean_iou',
        'num_pos',
    }
    for key in ('loss_rank', 'loss_sort', 'loss_bbox'):
        assert losses[key].dtype == torch.float32
        torch.testing.assert_close(losses[key].double(), expected[key], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        losses['giou_error'].double(), expected['box_loss'], rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(
        losses['mean_iou'].double(), expected['ious'].mean(), rtol=1e-5, atol=1e-6
    )
    assert losses['num_pos'].item() == 6 and expected['ious'][0] == 0

    total = losses['loss_rank'] + losses['loss_sort'] + losses['loss_bbox']
    grad_logits, grad_preds = torch.autograd.grad(total, [logits, preds])
    (oracle_preds,) = torch.autograd.grad(expected['surrogate'], preds)
    torch.testing.assert_close(grad_logits.double(), expected['grad_logits'], rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(grad_preds.double(), oracle_preds.double(), rtol=1e-4, atol=1e-6)
    assert grad_logits[labels == -1].abs().sum() == 0 and grad_preds.abs().sum() > 0


def test_each_term_carries_its_own_update():
    """A weight on loss_sort scales the sorting update alone; the box term reaches the boxes
    only (its weights are detached scores)."""
    logits, labels, preds, targets = batch(5)
    losses = RankSortLoss()(logits, labels, preds, targets)
    ious = iou_and_giou(preds.detach().double(), targets.double())[0]
    _, _, grad_rank, grad_sort = rs_oracle(logits.detach().double().numpy(), labels, ious.numpy())
    grads = {
        key: torch.autograd.grad(losses[key], [logits, preds], retain_graph=True, allow_unused=True)
        for key in ('loss_rank', 'loss_sort', 'loss_bbox')
    }
    torch.testing.assert_close(
        grads['loss_rank'][0].double().flatten(), torch.from_numpy(grad_rank), atol=1e-7, rtol=1e-4
    )
    torch.testing.assert_close(
        grads['loss_sort'][0].double().flatten(), torch.from_numpy(grad_sort), atol=1e-7, rtol=1e-4
    )
    assert torch.from_numpy(grad_sort).abs().sum() > 0
    assert grads['loss_rank'][1] is None and grads['loss_sort'][1] is None
    assert grads['loss_bbox'][0] is None


def test_box_loss_is_the_score_weighted_mean_of_one_minus_giou():
    """By hand: two positives of rows with highest logits 2 and -1 (whatever their positive
    class), boxes of known GIoU."""
    logits = torch.tensor([[0.0, 2.0], [-1.0, -3.0], [5.0, 1.0]])
    labels = torch.tensor([[1, 0], [0, 1], [0, 0]])
    targets = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    preds = torch.tensor([[0.0, 0.0, 10.0, 5.0], [10.0, 0.0, 20.0, 10.0]])
    # GIoU: 0.5 (inside, half the area); 0 (touching: IoU 0, hull 200 = union)
    losses = RankSortLoss()(logits, labels, preds, targets)
    w1, w2 = 1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.0))
    expected = (w1 * 0.5 + w2 * 1.0) / (w1 + w2)
    assert losses['giou_error'].item() == pytest.approx(expected, rel=1e-6)
    assert losses['mean_iou'].item() == pytest.approx(0.25, rel=1e-6)
    assert losses['sb_weight'].item() == pytest.approx(
        (losses['loss_rank'] + losses['loss_sort']).item() / expected, rel=1e-5
    )


def test_self_balance_matches_the_ranking_value_every_iteration():
    loss = RankSortLoss(loss_weight=0.5)
    for seed in range(3):
        logits, labels, preds, targets = batch(seed)
        losses = loss(logits, labels, preds, targets)
        ranking = losses['loss_rank'] + losses['loss_sort']
        torch.testing.assert_close(losses['loss_bbox'], ranking, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(
            losses['sb_weight'], ranking.detach() / (0.5 * losses['giou_error'])
        )
        assert not losses['sb_weight'].requires_grad
    assert not list(loss.buffers())  # no history


def test_self_balance_is_a_tensor_operation():
    """On the meta device nothing can reach the host (.item(), bool(), .tolist() raise): the
    balance is computed by tensor operations alone, so it never synchronises a GPU."""
    ranking = torch.tensor(0.8, device='meta')
    box_loss = torch.tensor(0.4, device='meta')
    with pytest.raises((RuntimeError, NotImplementedError)):
        ranking.item()
    balance = RankSortLoss.balance(ranking, box_loss)
    assert balance.device.type == 'meta' and balance.shape == ()
    assert RankSortLoss.balance(torch.tensor(0.8), torch.tensor(0.4)).item() == pytest.approx(2)
    assert RankSortLoss.balance(torch.tensor(0.8), torch.tensor(0.0)).item() == 0


def test_exact_boxes_give_a_zero_balanced_box_loss():
    logits, labels, _, targets = batch(6)
    preds = targets.clone().requires_grad_()
    losses = RankSortLoss()(logits, labels, preds, targets)
    assert losses['giou_error'] == 0 and losses['sb_weight'] == 0 and losses['loss_bbox'] == 0
    assert losses['mean_iou'].item() == pytest.approx(1)
    assert all(torch.isfinite(v).all() for v in losses.values())


def test_no_positive_gives_zeros_with_zero_gradients():
    logits = torch.randn(20, 3, requires_grad=True)
    labels = torch.zeros(20, 3, dtype=torch.int8)
    labels[2] = -1
    preds = torch.zeros(0, 4, requires_grad=True)
    losses = RankSortLoss()(logits, labels, preds, torch.zeros(0, 4))
    assert all(v.item() == 0 for v in losses.values())
    total = losses['loss_rank'] + losses['loss_sort'] + losses['loss_bbox']
    grad_logits, grad_preds = torch.autograd.grad(total, [logits, preds])
    assert grad_logits.abs().sum() == 0 and grad_preds.shape == (0, 4)


def test_half_precision_logits_give_float32_losses():
    logits, labels, preds, targets = batch(7)
    expected = RankSortLoss()(logits, labels, preds, targets)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = RankSortLoss()(logits.detach().half().requires_grad_(), labels, preds, targets)
    for key in ('loss_rank', 'loss_sort', 'loss_bbox'):
        assert losses[key].dtype == torch.float32
        torch.testing.assert_close(losses[key], expected[key], rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize(
    'value,name',
    [('0.5', 'delta'), (True, 'delta'), (None, 'delta'), (-0.1, 'delta'), (float('nan'), 'delta')],
)
def test_delta_must_be_a_non_negative_number(value, name):
    with pytest.raises(ValueError, match=rf'^{name} must be'):
        RankSortLoss(delta=value)
    assert RankSortLoss(delta=0).delta == 0.0


def test_softmax_and_flat_logits_are_refused():
    with pytest.raises(ValueError, match='use_sigmoid must be True'):
        RankSortLoss(use_sigmoid=False)
    logits, labels, preds, targets = batch(8)
    with pytest.raises(ValueError, match=r'logits of shape \(A, C\)'):
        RankSortLoss()(logits.flatten(), labels.flatten(), preds, targets)
    with pytest.raises(ValueError, match='labels mark 6 positives but 5 pairs of boxes'):
        RankSortLoss()(logits, labels, preds[1:], targets[1:])


def test_built_by_config_with_the_bbox_head_interface():
    loss = MODELS.build(dict(type='RankSortLoss', loss_weight=0.2))
    assert isinstance(loss, RankSortLoss) and loss.loss_weight == 0.2 and loss.decoded_boxes
    assert loss.delta == 0.5 and loss.eps == 1e-10
    assert loss.custom_cls_channels and loss.get_cls_channels(5) == 5
    logits = torch.randn(4, 5)
    scores = loss.get_activation(logits)
    assert scores.shape == (4, 6) and (scores[:, -1] == 0).all()
    torch.testing.assert_close(scores[:, :-1], logits.sigmoid())

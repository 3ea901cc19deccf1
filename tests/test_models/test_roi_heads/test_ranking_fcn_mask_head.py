"""RankingFCNMaskHead: the weighted, self-balanced Dice loss against hand computations and a
float64 reference written from its definition."""

import math

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks
from mmdet_alrp.models.roi_heads.mask_heads import RankingFCNMaskHead

NUM_CLASSES = 3
TRAIN_CFG = ConfigDict(mask_size=2)
KEYS = {'loss_mask', 'dice_error', 'mask_sb_weight'}


def mask_head(**kwargs) -> RankingFCNMaskHead:
    cfg = dict(
        type='RankingFCNMaskHead',
        num_convs=1,
        in_channels=4,
        conv_out_channels=4,
        num_classes=NUM_CLASSES,
    )
    cfg.update(kwargs)
    return MODELS.build(cfg)


class Positives:
    """What FCNMaskHead reads of a SamplingResult: the positives' priors, gt indices and labels."""

    def __init__(self, priors, gt_inds, labels):
        self.pos_priors = torch.tensor(priors, dtype=torch.float32).view(-1, 4)
        self.pos_assigned_gt_inds = torch.tensor(gt_inds, dtype=torch.long)
        self.pos_gt_labels = torch.tensor(labels, dtype=torch.long)


# One 2 x 2 image; both positives' RoIs are the whole image, so (RoIAlign, aligned, 2 x 2 output)
# their targets are their gt masks: instance 0 [[1, 0], [1, 1]], instance 1 [[0, 0], [0, 1]].
GT_MASKS = np.array([[[1, 0], [1, 1]], [[0, 0], [0, 1]]], dtype=np.uint8)
POSITIVES = [Positives([[0, 0, 2, 2], [0, 0, 2, 2]], [0, 1], [1, 0])]
GT = [InstanceData(masks=BitmapMasks(GT_MASKS, 2, 2), labels=torch.tensor([1, 0]))]
L3 = math.log(3.0)  # sigmoid(L3) = 0.75, sigmoid(-L3) = 0.25


def hand_logits() -> torch.Tensor:
    """Logits (2, 3, 2, 2): positive 0 (class 1) has p = [[.75, .25], [.5, .75]] on channel 1,
    positive 1 (class 0) p = [[.5, .5], [.25, .75]] on channel 0; the other channels are far
    from both and must play no part."""
    logits = torch.full((2, NUM_CLASSES, 2, 2), 5.0)
    logits[0, 1] = torch.tensor([[L3, -L3], [0.0, L3]])
    logits[1, 0] = torch.tensor([[0.0, 0.0], [-L3, L3]])
    return logits


# dice_0 = 2 * (.75 + .5 + .75) / (.5625 + .0625 + .25 + .5625 + 3 + 1e-5) = 4 / (4.4375 + 1e-5)
# dice_1 = 2 * .75 / (.25 + .25 + .0625 + .5625 + 1 + 1e-5) = 1.5 / (2.125 + 1e-5)
DICE = (4 / (4.4375 + 1e-5), 1.5 / (2.125 + 1e-5))


def loss_of(head, logits, weights, target=0.3):
    return head.loss_and_target(
        logits,
        POSITIVES,
        GT,
        TRAIN_CFG,
        pos_weights=torch.tensor(weights),
        balance_target=torch.tensor(target),
    )


def test_targets_are_the_gt_masks():
    head = mask_head()
    targets = head.get_targets(POSITIVES, GT, TRAIN_CFG)
    assert torch.equal(targets, torch.from_numpy(GT_MASKS).float())


def test_dice_and_weights_against_hand_computation():
    head = mask_head()
    logits = hand_logits().requires_grad_()
    result = loss_of(head, logits, [0.8, 0.2], target=0.3)
    loss = result['loss_mask']
    assert set(loss) == KEYS
    expected = 0.8 * (1 - DICE[0]) + 0.2 * (1 - DICE[1])  # the weights sum to 1
    assert loss['dice_error'].item() == pytest.approx(expected, rel=1e-6)
    # balanced: the value is the target, the gradient that of L_mask times target / L_mask
    assert loss['loss_mask'].item() == pytest.approx(0.3, rel=1e-6)
    assert loss['mask_sb_weight'].item() == pytest.approx(0.3 / expected, rel=1e-6)
    loss['loss_mask'].backward()

    reference = hand_logits().double().requires_grad_()
    p0, p1 = reference[0, 1].sigmoid(), reference[1, 0].sigmoid()
    t = torch.from_numpy(GT_MASKS).double()
    dice0 = 2 * (p0 * t[0]).sum() / ((p0 * p0).sum() + (t[0] * t[0]).sum() + 1e-5)
    dice1 = 2 * (p1 * t[1]).sum() / ((p1 * p1).sum() + (t[1] * t[1]).sum() + 1e-5)
    assert dice0.item() == pytest.approx(DICE[0], rel=1e-7)
    assert dice1.item() == pytest.approx(DICE[1], rel=1e-7)
    (0.3 / expected * (0.8 * (1 - dice0) + 0.2 * (1 - dice1))).backward()
    torch.testing.assert_close(logits.grad, reference.grad.float(), rtol=1e-5, atol=1e-7)
    assert logits.grad[0, [0, 2]].abs().sum() == 0 and logits.grad[1, 1:].abs().sum() == 0


def test_normalised_by_the_weights_sum():
    head = mask_head()
    values = [
        loss_of(head, hand_logits(), w)['loss_mask']['dice_error'].item()
        for w in ([0.5, 0.5], [3.0, 3.0], [0.9, 0.3])
    ]
    mean = ((1 - DICE[0]) + (1 - DICE[1])) / 2
    assert values[0] == pytest.approx(mean, rel=1e-6)
    assert values[1] == pytest.approx(mean, rel=1e-6)  # scale-free
    assert values[2] == pytest.approx((0.9 * (1 - DICE[0]) + 0.3 * (1 - DICE[1])) / 1.2, rel=1e-6)
    # a sum under 1e-10 divides by 1
    tiny = loss_of(head, hand_logits(), [1e-12, 2e-12])['loss_mask']['dice_error'].item()
    assert tiny == pytest.approx(1e-12 * (1 - DICE[0]) + 2e-12 * (1 - DICE[1]), rel=1e-5)
    zero = loss_of(head, hand_logits(), [0.0, 0.0])['loss_mask']
    assert zero['dice_error'].item() == 0 and zero['loss_mask'].item() == 0
    assert zero['mask_sb_weight'].item() == 0


def test_weights_and_target_are_detached():
    head = mask_head()
    weights = torch.tensor([0.8, 0.2], requires_grad=True)
    target = torch.tensor(0.3, requires_grad=True)
    loss = head.loss_and_target(
        hand_logits().requires_grad_(), POSITIVES, GT, TRAIN_CFG, weights, target
    )['loss_mask']['loss_mask']
    loss.backward()
    assert weights.grad is None and target.grad is None


def test_class_agnostic_uses_channel_zero():
    head = mask_head(class_agnostic=True)
    logits = torch.stack([hand_logits()[0, 1:2], hand_logits()[1, 0:1]])
    loss = loss_of(head, logits, [0.8, 0.2])['loss_mask']
    assert loss['dice_error'].item() == pytest.approx(
        0.8 * (1 - DICE[0]) + 0.2 * (1 - DICE[1]), rel=1e-6
    )


def test_no_positive_gives_a_zero_loss_with_a_graph():
    head = mask_head()
    feats = torch.randn(0, 4, 7, 7)
    mask_preds = head(feats)
    empty = [Positives([], [], [])]
    gt = [
        InstanceData(
            masks=BitmapMasks(np.zeros((0, 8, 8), np.uint8), 8, 8),
            labels=torch.zeros(0, dtype=torch.long),
        )
    ]
    loss = head.loss_and_target(
        mask_preds, empty, gt, ConfigDict(mask_size=14), torch.zeros(0), torch.tensor(0.5)
    )['loss_mask']
    assert set(loss) == KEYS
    assert all(v.item() == 0 for v in loss.values())
    loss['loss_mask'].backward()  # a graph, with zero gradients
    assert all(p.grad is not None and p.grad.abs().sum() == 0 for p in head.parameters())


def test_low_precision_logits_give_a_float32_loss():
    head = mask_head()
    loss = loss_of(head, hand_logits().bfloat16(), [0.8, 0.2])['loss_mask']
    assert loss['dice_error'].dtype == torch.float32
    assert loss['dice_error'].item() == pytest.approx(
        0.8 * (1 - DICE[0]) + 0.2 * (1 - DICE[1]), rel=1e-2
    )


def test_bad_configs_and_calls_are_refused():
    with pytest.raises(ValueError, match='sigmoid DiceLoss'):
        mask_head(loss_mask=dict(type='CrossEntropyLoss', use_mask=True))
    with pytest.raises(ValueError, match='loss_weight must be 1'):
        mask_head(loss_mask=dict(type='DiceLoss', loss_weight=2.0))
    head = mask_head()
    with pytest.raises(ValueError, match='RankSortRoIHead'):
        head.loss_and_target(hand_logits(), POSITIVES, GT, TRAIN_CFG)
    with pytest.raises(ValueError, match=r'pos_weights must be \(2,\)'):
        loss_of(head, hand_logits(), [0.8, 0.2, 0.1])


def test_is_a_sampling_result_consumer():
    # the head reads SamplingResult's own attributes (the stand-in above mirrors them)
    assert {'pos_priors', 'pos_assigned_gt_inds', 'pos_gt_labels'} <= set(
        vars(SamplingResult.random(rng=0))
    )

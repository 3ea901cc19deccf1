"""RankingSOLOV2Head (RS-SOLOv2): the Dice sorting targets, the weighted and balanced mask loss
and the Rank & Sort Loss against hand computations and the float64 oracle of
tests/test_models/rs_loss_oracle.py; a real forward (keys, gradients, empty ground truth, class
counts, prediction, learning, autocast); the RS-SOLOv2 configs."""

import math
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmdet_alrp.models.dense_heads import RankingSOLOV2Head
from tests.test_models.rs_loss_oracle import rs_oracle

pytestmark = pytest.mark.usefixtures('mmdet_scope_quiet_logs')

ROOT = Path(__file__).resolve().parents[3]
KEYS = {
    'loss_rank',
    'loss_sort',
    'loss_mask',
    'dice_error',
    'mask_sb_weight',
    'mean_dice',
    'num_pos',
}
TEST_CFG = ConfigDict(
    nms_pre=500,
    score_thr=0.0,
    mask_thr=0.5,
    filter_thr=0.05,
    kernel='gaussian',
    sigma=2.0,
    max_per_img=100,
)
L3 = math.log(3.0)  # sigmoid(L3) = 0.75, sigmoid(2 L3) = 0.9


def build_head(num_classes: int = 3, **kwargs) -> RankingSOLOV2Head:
    """A small head on 16-channel features of 5 levels (strides 4 .. 64), masks at stride 4."""
    cfg = dict(
        type='RankingSOLOV2Head',
        num_classes=num_classes,
        in_channels=16,
        feat_channels=16,
        stacked_convs=2,
        strides=[8, 8, 16, 32, 32],
        scale_ranges=((1, 24), (12, 48), (24, 96), (48, 192), (96, 2048)),
        num_grids=[12, 10, 8, 6, 4],
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        mask_feature_head=dict(
            feat_channels=8,
            start_level=0,
            end_level=3,
            out_channels=16,
            mask_stride=4,
            norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        ),
        test_cfg=TEST_CFG,
    )
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def feats(num_imgs: int, size: int = 64, seed: int = 0) -> List[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.randn(num_imgs, 16, size // stride, size // stride, generator=generator)
        for stride in (4, 8, 16, 32, 64)
    ]


def block_mask(size: int, top: int, left: int, bottom: int, right: int) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[top:bottom, left:right] = 1
    return mask


def instances(blocks, labels, size: int = 64) -> InstanceData:
    """Ground truth of rectangular masks (top, left, bottom, right), boxes around them."""
    masks = np.stack([block_mask(size, *b) for b in blocks]) if blocks else None
    return InstanceData(
        bboxes=torch.tensor([[b[1], b[0], b[3], b[2]] for b in blocks], dtype=torch.float32).view(
            -1, 4
        ),
        labels=torch.tensor(labels, dtype=torch.long),
        masks=BitmapMasks(
            masks if masks is not None else np.zeros((0, size, size), np.uint8), size, size
        ),
    )


GTS = [
    instances([(8, 8, 40, 36), (30, 20, 62, 60), (4, 44, 16, 60)], [0, 2, 1]),
    instances([(16, 16, 48, 48)], [1]),
]


def metas(num_imgs: int, size: int = 64) -> List[dict]:
    return [dict(img_shape=(size, size), ori_shape=(size, size)) for _ in range(num_imgs)]


def losses_of(head, gts=GTS, seed: int = 0) -> Dict[str, torch.Tensor]:
    return head.loss_by_feat(*head(feats(len(gts), seed=seed)), gts, metas(len(gts)))


def total(losses: Dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(v for k, v in losses.items() if 'loss' in k)


class Recorder:
    """Records the (logits, labels, targets) a head passes to ``loss_cls.rank_and_sort``."""

    def __init__(self, head):
        self.calls = []
        original = head.loss_cls.rank_and_sort

        def record(logits, labels, targets):
            self.calls.append((logits.detach().clone(), labels.clone(), targets.clone()))
            return original(logits, labels, targets)

        head.loss_cls.rank_and_sort = record


# ---------------------------------------------------------------------------------------------
# Hand computation: one 32 x 32 image, one level of a 4 x 4 grid (and a second level that no
# instance reaches), mask features of one channel at stride 4 (8 x 8), dynamic 1 x 1 kernels.
# The instance's mask is the block of rows and columns 8 .. 23: its target at stride 4 is the
# 4 x 4 block of rows and columns 2 .. 5 (16 of 64 pixels); its mass centre (15.5, 15.5) and
# box make the cells (1, 1), (1, 2), (2, 1), (2, 2) positives: indices 5, 6, 9, 10.
# The mask feature is L3 on the target block and -L3 elsewhere, so a cell with kernel k predicts
# p = sigmoid(k L3) on the block and sigmoid(-k L3) off it:
#   k = 1: p = .75 / .25: dice = 2 * 12 / (12 + 16 + 2e-3)  (sum p t = 16 * .75, sum p^2 = 9 + 3)
#   k = 0: p = .5:        dice = 2 * 8 / (16 + 16 + 2e-3)
#   k = -1: p = .25 / .75: dice = 2 * 4 / (28 + 16 + 2e-3)  (sum p^2 = 1 + 27)
#   k = 2: p = .9 / .1:   dice = 2 * 14.4 / (13.44 + 16 + 2e-3)  (sum p^2 = 12.96 + .48)
HAND_CELLS = [5, 6, 9, 10]
HAND_KERNELS = [1.0, 0.0, -1.0, 2.0]
HAND_DICE = [24 / 28.002, 16 / 32.002, 8 / 44.002, 28.8 / 29.442]


def hand_head(num_classes: int = 3) -> RankingSOLOV2Head:
    return build_head(
        num_classes=num_classes,
        strides=[8, 16],
        scale_ranges=((1, 64), (128, 256)),
        num_grids=[4, 2],
        mask_feature_head=dict(
            feat_channels=8, start_level=0, end_level=1, out_channels=1, norm_cfg=None
        ),
    )


def hand_mask_feats() -> torch.Tensor:
    feats = torch.full((1, 1, 8, 8), -L3, dtype=torch.float64)
    feats[..., 2:6, 2:6] = L3
    return feats


def hand_outputs(kernels=HAND_KERNELS, num_classes: int = 3):
    """(kernel preds, class logits, mask features) of the two levels, float32."""
    kernel0 = torch.zeros(1, 1, 4, 4)
    kernel0.view(-1)[HAND_CELLS] = torch.tensor(kernels)
    generator = torch.Generator().manual_seed(1)
    cls0 = torch.randn(1, num_classes, 4, 4, generator=generator)
    cls1 = torch.randn(1, num_classes, 2, 2, generator=generator)
    return [kernel0, torch.zeros(1, 1, 2, 2)], [cls0, cls1], hand_mask_feats().float()


def hand_gt(blocks=((8, 8, 24, 24),), labels=(1,)) -> List[InstanceData]:
    return [instances(list(blocks), list(labels), size=32)]


def test_targets_are_solov2s_on_the_hand_case():
    head = hand_head()
    masks, labels, pos, cells = head._get_targets_single(hand_gt()[0], featmap_sizes=(8, 8))
    assert cells[0] == HAND_CELLS and cells[1] == []
    expected = torch.zeros(8, 8, dtype=torch.uint8)
    expected[2:6, 2:6] = 1
    assert all(torch.equal(mask, expected) for mask in masks[0])
    assert (labels[0].flatten()[HAND_CELLS] == 1).all() and (labels[0] != 3).sum() == 4


def test_dice_targets_weights_and_losses_against_hand_computation():
    head = hand_head()
    recorder = Recorder(head)
    kernels, cls_logits, mask_feats = hand_outputs()
    kernels[0].requires_grad_()
    losses = head.loss_by_feat(kernels, cls_logits, mask_feats, hand_gt(), metas(1, 32))
    assert set(losses) == KEYS

    # the sorting targets: the Dice coefficients of the hand computation
    (logits, labels, targets) = recorder.calls[0]
    torch.testing.assert_close(targets, torch.tensor(HAND_DICE), rtol=1e-6, atol=0)
    assert losses['mean_dice'].item() == pytest.approx(sum(HAND_DICE) / 4, rel=1e-6)
    assert losses['num_pos'].item() == 4

    # rows: level 0's 16 cells then level 1's 4, classes in columns
    flat = torch.cat([c.permute(0, 2, 3, 1).reshape(-1, 3) for c in cls_logits])
    assert torch.equal(logits, flat)
    expected_labels = torch.zeros(20, 3, dtype=torch.int8)
    expected_labels[HAND_CELLS, 1] = 1
    assert torch.equal(labels, expected_labels)
    loss_rank, loss_sort, _, _ = rs_oracle(flat.numpy(), expected_labels.numpy(), HAND_DICE)
    assert losses['loss_rank'].item() == pytest.approx(loss_rank, rel=1e-5)
    assert losses['loss_sort'].item() == pytest.approx(loss_sort, rel=1e-5)

    # mask loss: weighted by the highest class score of each cell, balanced to rank + sort
    weights = flat[HAND_CELLS].double().amax(1).sigmoid()
    errors = 1 - torch.tensor(HAND_DICE, dtype=torch.float64)
    dice_error = ((weights * errors).sum() / weights.sum()).item()
    assert losses['dice_error'].item() == pytest.approx(dice_error, rel=1e-5)
    assert losses['loss_mask'].item() == pytest.approx(loss_rank + loss_sort, rel=1e-5)
    assert losses['mask_sb_weight'].item() == pytest.approx(
        (loss_rank + loss_sort) / dice_error, rel=1e-5
    )

    # its gradient: that of SB * L_mask, L_mask written from the Dice definition in float64
    losses['loss_mask'].backward()
    k = torch.tensor(HAND_KERNELS, dtype=torch.float64, requires_grad=True)
    t = torch.zeros(8, 8, dtype=torch.float64)
    t[2:6, 2:6] = 1
    p = (k[:, None, None] * hand_mask_feats()[0, 0]).sigmoid()
    dice = 2 * (p * t).sum((1, 2)) / ((p * p).sum((1, 2)) + 1e-3 + (t * t).sum() + 1e-3)
    torch.testing.assert_close(dice.detach(), torch.tensor(HAND_DICE, dtype=torch.float64))
    sb = (loss_rank + loss_sort) / dice_error
    (sb * (weights * (1 - dice)).sum() / weights.sum()).backward()
    torch.testing.assert_close(
        kernels[0].grad.view(-1)[HAND_CELLS], k.grad.float(), rtol=1e-4, atol=1e-7
    )
    assert kernels[0].grad.view(-1)[[0, 1, 2, 3, 4, 7, 8, 11, 12, 13, 14, 15]].abs().sum() == 0


def test_a_shared_cell_takes_the_later_instance_and_both_masks_train():
    """Instance 1 (class 2, columns 4 .. 19) reaches cells 5 and 9 of instance 0 (class 1): they
    take class 2 and, as their sorting target, the Dice of instance 1's mask; the mask loss
    has 6 terms, the masks of both instances on cells 5 and 9."""
    head = hand_head()
    recorder = Recorder(head)
    kernels, cls_logits, mask_feats = hand_outputs()
    gt = hand_gt(blocks=[(8, 8, 24, 24), (8, 4, 24, 20)], labels=[1, 2])
    _, labels, _, cells = head._get_targets_single(gt[0], featmap_sizes=(8, 8))
    assert cells[0] == HAND_CELLS + [5, 9]
    losses = head.loss_by_feat(kernels, cls_logits, mask_feats, gt, metas(1, 32))
    _, labels, targets = recorder.calls[0]
    assert labels[[6, 10], 1].tolist() == [1, 1] and labels[[5, 9], 2].tolist() == [1, 1]
    assert (labels == 1).sum() == 4

    # instance 1's target: columns 1 .. 4 of rows 2 .. 5; the kernel of cell 5 is 1, of 9 is -1
    t1 = torch.zeros(8, 8, dtype=torch.float64)
    t1[2:6, 1:5] = 1

    def dice_of(k, t):
        p = (k * hand_mask_feats()[0, 0]).sigmoid()
        return (2 * (p * t).sum() / ((p * p).sum() + (t * t).sum() + 2e-3)).item()

    expected = [dice_of(1.0, t1), HAND_DICE[1], dice_of(-1.0, t1), HAND_DICE[3]]
    torch.testing.assert_close(targets, torch.tensor(expected, dtype=torch.float32))

    flat = torch.cat([c.permute(0, 2, 3, 1).reshape(-1, 3) for c in cls_logits]).double()
    weights = flat[HAND_CELLS + [5, 9]].amax(1).sigmoid()
    errors = 1 - torch.tensor(HAND_DICE + [expected[0], expected[2]], dtype=torch.float64)
    dice_error = (weights * errors).sum() / weights.sum()
    assert losses['dice_error'].item() == pytest.approx(dice_error.item(), rel=1e-5)


def test_losses_are_finite_and_reach_every_parameter():
    head = build_head()
    losses = losses_of(head)
    assert set(losses) == KEYS
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert losses['num_pos'] > 0 and 0 < losses['mean_dice'] < 1
    assert losses['loss_mask'].item() == pytest.approx(
        (losses['loss_rank'] + losses['loss_sort']).item(), rel=1e-6
    )
    head.zero_grad(set_to_none=True)
    total(losses).backward()
    for name, param in head.named_parameters():
        assert param.grad is not None, f'no gradient reaches {name}'
        assert param.grad.abs().sum() > 0, f'zero gradient on {name}'


@pytest.mark.parametrize('empty_images', [[0, 1], [1]])
def test_images_without_ground_truth(empty_images):
    head = build_head()
    gts = [instances([], []) if i in empty_images else GTS[i] for i in range(2)]
    losses = losses_of(head, gts)
    assert set(losses) == KEYS
    assert all(torch.isfinite(v).all() for v in losses.values())
    head.zero_grad(set_to_none=True)
    total(losses).backward()
    grads = {name: p.grad for name, p in head.named_parameters()}
    assert all(g is not None for g in grads.values())  # every parameter, as DDP needs
    if empty_images == [0, 1]:
        assert all(v.item() == 0 for v in losses.values())
        assert all(g.abs().sum() == 0 for g in grads.values())
    else:
        assert losses['num_pos'] > 0 and losses['loss_rank'] > 0


@pytest.mark.parametrize('num_classes', [3, 80])
def test_any_number_of_classes(num_classes):
    head = build_head(num_classes=num_classes)
    assert head.conv_cls.out_channels == num_classes
    recorder = Recorder(head)
    gts = [instances([(16, 16, 48, 48)], [num_classes - 1])]
    losses = losses_of(head, gts)
    assert all(torch.isfinite(v).all() for v in losses.values())
    logits, labels, targets = recorder.calls[0]
    assert logits.shape == labels.shape and labels.shape[1] == num_classes
    assert (labels[:, :-1] == 0).all() and (labels[:, -1] == 1).sum() == len(targets) > 0


def trained(head, steps: int, lr: float, gts=GTS) -> List[Dict[str, float]]:
    """The head after ``steps`` Adam steps on fixed features; the losses of every step."""
    torch.manual_seed(0)
    x = feats(len(gts))
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        losses = head.loss_by_feat(*head(x), gts, metas(len(gts)))
        history.append({k: v.item() for k, v in losses.items()})
        optimizer.zero_grad()
        total(losses).backward()
        optimizer.step()
    return history


@pytest.mark.parametrize('num_classes', [3, 80])
def test_predict_shapes(num_classes):
    head = build_head(num_classes=num_classes)
    gts = [instances([(8, 8, 40, 36)], [num_classes - 1]), GTS[1]]
    trained(head, steps=10, lr=1e-2, gts=gts)  # masks above the threshold to predict
    samples = []
    for meta in metas(2):
        sample = DetDataSample()
        sample.set_metainfo(dict(meta, batch_input_shape=(64, 64)))
        samples.append(sample)
    head.eval()
    with torch.no_grad():
        results = head.predict(tuple(feats(2)), samples)
    assert len(results) == 2
    assert sum(len(result) for result in results) > 0
    for result in results:
        n = len(result)
        assert result.masks.shape == (n, 64, 64)
        assert result.scores.shape == (n,) and result.labels.shape == (n,)
        assert result.bboxes.shape == (n, 4)
        assert ((result.labels >= 0) & (result.labels < num_classes)).all()
        assert ((result.scores >= 0) & (result.scores <= 1)).all()


def test_loss_falls_on_one_generated_image():
    history = trained(build_head(), steps=16, lr=1e-3, gts=[GTS[1]])
    first, last = history[0], history[-1]
    assert last['loss_rank'] + last['loss_sort'] < 0.5 * (first['loss_rank'] + first['loss_sort'])
    assert last['dice_error'] < first['dice_error']
    assert last['mean_dice'] > first['mean_dice']


def test_under_autocast_the_losses_are_float32():
    head = build_head()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = losses_of(head)
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert {v.dtype for k, v in losses.items() if 'loss' in k} == {torch.float32}
    total(losses).backward()


def test_bad_configs_and_inputs_are_refused():
    with pytest.raises(ValueError, match='RankSortLoss'):
        build_head(loss_cls=dict(type='FocalLoss', use_sigmoid=True))
    with pytest.raises(ValueError, match='loss_weight must be 1'):
        build_head(loss_mask=dict(type='DiceLoss', use_sigmoid=True, loss_weight=3.0))
    with pytest.raises(ValueError, match='sigmoid DiceLoss'):
        build_head(loss_mask=dict(type='CrossEntropyLoss', use_mask=True))
    head = build_head()
    with pytest.raises(ValueError, match='label 3 of image 1'):
        losses_of(head, [GTS[0], instances([(16, 16, 48, 48)], [3])])
    sample = DetDataSample(metainfo=dict(img_id=7, batch_input_shape=(64, 64)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[16.0, 16.0, 48.0, 48.0]]), labels=torch.tensor([1])
    )
    with pytest.raises(ValueError, match=r'image 0 of the batch \(img_id 7\) has none'):
        head.loss(tuple(feats(1)), [sample])


CONFIGS = {
    'rank-sort-loss_solov2-light_r34_fpn_8xb2-ms-3x_coco.py': (34, 2, 256, 128),
    'rank-sort-loss_solov2_r101_fpn_8xb2-ms-3x_coco.py': (101, 4, 512, 256),
}


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_configs_build_the_rs_solov2_head_without_downloads(name):
    """The configs build (backbone init_cfg None: nothing is downloaded) with mmdet 3.3's
    SOLOv2 (light for R-34) and RS Loss: depth, stacked convs, widths, 80 classes, the Dice."""
    cfg = Config.fromfile(str(ROOT / 'configs' / 'rank_sort_loss' / name))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    depth, stacked_convs, feat_channels, mask_channels = CONFIGS[name]
    head = model.mask_head
    assert type(head) is RankingSOLOV2Head and model.backbone.depth == depth
    assert type(head.loss_cls).__name__ == 'RankSortLoss'
    assert head.loss_mask.loss_weight == 1.0 and head.loss_mask.eps == 1e-3
    assert not head.loss_mask.naive_dice
    assert len(head.cls_convs) == stacked_convs and head.feat_channels == feat_channels
    assert head.mask_feature_head.out_channels == mask_channels
    assert head.conv_cls.out_channels == 80
    assert cfg.optim_wrapper.optimizer.lr == 0.006 and cfg.train_dataloader.batch_size == 2
    assert cfg.val_evaluator.type == 'CocoLRPMetric' and cfg.val_evaluator.metric == 'segm'

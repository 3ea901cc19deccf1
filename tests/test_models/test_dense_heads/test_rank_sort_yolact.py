"""RS-YOLACT: RankingYOLACTHead (Rank & Sort Loss on YOLACT's classifier, score-weighted GIoU)
and RankingYOLACTProtonet (score-weighted Dice, self-balanced), in mmdet's YOLACT detector."""

import copy
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.optim import OptimWrapper
from mmengine.structures import InstanceData

import mmdet_alrp  # noqa: F401  (registers our modules)
from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks
from mmdet.testing import demo_mm_inputs

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / 'configs/rank_sort_loss/rank-sort-loss_yolact_r50_1xb8-55e_coco.py'
IMG = 128
LOSS_KEYS = {
    'loss_rank',
    'loss_sort',
    'loss_bbox',
    'giou_error',
    'sb_weight',
    'mean_iou',
    'num_pos',
    'loss_mask',
    'dice_error',
    'mask_sb_weight',
}

pytestmark = pytest.mark.usefixtures('mmdet_scope_quiet_logs')


def tiny_yolact(num_classes: int = 3, **mask_head) -> torch.nn.Module:
    """mmdet's YOLACT with our heads, a ResNet-18 of 8 base channels and 16-channel FPN."""
    cfg = dict(
        type='YOLACT',
        data_preprocessor=dict(
            type='DetDataPreprocessor', mean=[0, 0, 0], std=[255, 255, 255], pad_mask=True
        ),
        backbone=dict(
            type='ResNet', depth=18, base_channels=8, out_indices=(1, 2, 3), norm_eval=False
        ),
        neck=dict(
            type='FPN',
            in_channels=[16, 32, 64],
            out_channels=16,
            start_level=0,
            add_extra_convs='on_input',
            num_outs=5,
            upsample_cfg=dict(mode='bilinear'),
        ),
        bbox_head=dict(
            type='RankingYOLACTHead',
            num_classes=num_classes,
            in_channels=16,
            feat_channels=16,
            num_protos=8,
            anchor_generator=dict(
                type='AnchorGenerator',
                octave_base_scale=3,
                scales_per_octave=1,
                base_sizes=[8, 16, 32, 64, 128],
                ratios=[0.5, 1.0, 2.0],
                strides=[8, 16, 32, 64, 128],
            ),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2]
            ),
        ),
        mask_head=dict(
            type='RankingYOLACTProtonet',
            in_channels=16,
            num_classes=num_classes,
            proto_channels=(16, 16, 16, None, 16, 8),
            num_protos=8,
            **mask_head,
        ),
        train_cfg=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.4,
                min_pos_iou=0.0,
                ignore_iof_thr=-1,
                gt_max_assign_all=False,
            ),
            sampler=dict(type='PseudoSampler'),
            allowed_border=-1,
            pos_weight=-1,
            debug=False,
        ),
        test_cfg=dict(
            nms_pre=1000,
            min_bbox_size=0,
            score_thr=0.0,
            mask_thr=0.5,
            iou_thr=0.5,
            top_k=200,
            max_per_img=100,
            mask_thr_binary=0.5,
        ),
    )
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(cfg))
    model.init_weights()
    return model


def batch(num_classes: int = 3, num_items=(3, 2), seed: int = 0) -> dict:
    torch.manual_seed(seed)
    np.random.seed(seed)
    return demo_mm_inputs(
        len(num_items),
        (3, IMG, IMG),
        num_items=list(num_items),
        num_classes=num_classes,
        with_mask=True,
    )


def losses_of(model, data: dict) -> dict:
    data = model.data_preprocessor(data, True)
    return model.loss(data['inputs'], data['data_samples'])


def total(losses: dict) -> torch.Tensor:
    return sum(value for key, value in losses.items() if 'loss' in key)


def test_losses_are_finite_with_their_keys_and_balanced():
    model = tiny_yolact()
    losses = losses_of(model, batch())
    assert set(losses) == LOSS_KEYS
    assert all(torch.isfinite(value).all() for value in losses.values())
    assert losses['num_pos'] > 0
    ranking = losses['loss_rank'] + losses['loss_sort']
    assert ranking > 0
    # both self-balanced terms take the value of the ranking losses
    torch.testing.assert_close(losses['loss_bbox'], ranking)
    torch.testing.assert_close(losses['loss_mask'], ranking)
    torch.testing.assert_close(losses['mask_sb_weight'], ranking / losses['dice_error'])
    assert 0 < losses['dice_error'] < 1


def test_every_parameter_takes_a_gradient():
    model = tiny_yolact()
    model.train()
    total(losses_of(model, batch())).backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    for name in ('bbox_head.conv_cls.weight', 'bbox_head.conv_coeff.weight'):
        assert model.get_parameter(name).grad.abs().sum() > 0, name
    assert model.mask_head.protonet[-2].weight.grad.abs().sum() > 0


def test_no_ground_truth_gives_zero_losses_with_a_graph():
    model = tiny_yolact()
    losses = losses_of(model, batch(num_items=(0, 0)))
    assert set(losses) == LOSS_KEYS
    for key in ('loss_rank', 'loss_sort', 'loss_bbox', 'loss_mask', 'num_pos'):
        assert losses[key].item() == 0, key
    total(losses).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_one_image_without_ground_truth_in_the_batch():
    model = tiny_yolact()
    losses = losses_of(model, batch(num_items=(3, 0)))
    assert all(torch.isfinite(value).all() for value in losses.values())
    torch.testing.assert_close(losses['loss_mask'], losses['loss_rank'] + losses['loss_sort'])


def test_ignored_priors_take_no_gradient():
    """Anchors of the assigner's ignore band (IoU in [0.4, 0.5)) take no gradient on their
    logits; positives and negatives do."""
    model = tiny_yolact()
    head = model.bbox_head
    data = model.data_preprocessor(batch(), True)
    feats = [f.detach().requires_grad_() for f in model.extract_feat(data['inputs'])]
    cls_scores, bbox_preds, coeff_preds = head(feats)
    for score in cls_scores:
        score.retain_grad()
    gt = [sample.gt_instances for sample in data['data_samples']]
    metas = [sample.metainfo for sample in data['data_samples']]
    losses = head.loss_by_feat(cls_scores, bbox_preds, coeff_preds, gt, metas)
    (losses['loss_rank'] + losses['loss_sort'] + losses['loss_bbox']).backward()

    num_imgs, channels = len(metas), head.cls_out_channels
    anchors, valid = head.get_anchors([s.shape[-2:] for s in cls_scores], metas, device='cpu')
    labels, label_weights = head.get_targets(anchors, valid, gt, metas)[:2]
    ignored = torch.cat(label_weights, 1).reshape(-1) == 0
    labels = torch.cat(labels, 1).reshape(-1)
    grads = torch.cat(
        [s.grad.permute(0, 2, 3, 1).reshape(num_imgs, -1, channels) for s in cls_scores], 1
    ).reshape(-1, channels)
    assert ignored.any() and (labels < head.num_classes).any()
    assert (grads[ignored] == 0).all()
    assert grads[labels < head.num_classes].abs().sum() > 0
    assert grads[(labels == head.num_classes) & ~ignored].abs().sum() > 0


@pytest.mark.parametrize('num_classes', [1, 3, 1203])
def test_any_number_of_classes(num_classes):
    model = tiny_yolact(num_classes)
    assert model.bbox_head.conv_cls.out_channels == 3 * num_classes
    # demo_mm_inputs draws labels in 1 .. C-1: wrap them into 0 .. C-1, the last class among them
    data = batch(max(num_classes, 2), seed=1)
    for sample in data['data_samples']:
        sample.gt_instances.labels.remainder_(num_classes)[0] = num_classes - 1
    losses = losses_of(model, data)
    assert all(torch.isfinite(value).all() for value in losses.values())
    assert losses['num_pos'] > 0 and losses['loss_rank'] > 0
    total(losses).backward()
    model.eval()
    with torch.no_grad():
        results = model.test_step(batch(max(num_classes, 2)))
    labels = torch.cat([r.pred_instances.labels for r in results])
    assert ((labels >= 0) & (labels < num_classes)).all()


def test_predict_shapes():
    model = tiny_yolact()
    model.eval()
    with torch.no_grad():
        results = model.test_step(batch())
    assert len(results) == 2
    for result in results:
        pred = result.pred_instances
        n = len(pred)
        assert 0 < n <= 100
        assert pred.bboxes.shape == (n, 4)
        assert pred.scores.shape == pred.labels.shape == (n,)
        assert pred.masks.shape == (n, IMG, IMG) and pred.masks.dtype == torch.bool
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()


def test_loss_falls_on_one_image():
    model = tiny_yolact()
    model.train()
    data = batch(num_items=(3,), seed=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    history = []
    for _ in range(12):
        losses = losses_of(model, data)
        history.append({key: losses[key].item() for key in ('loss_rank', 'dice_error')})
        optimizer.zero_grad()
        total(losses).backward()
        optimizer.step()
    assert history[-1]['loss_rank'] < 0.7 * history[0]['loss_rank']
    assert history[-1]['dice_error'] < history[0]['dice_error']


def dice_error(p: np.ndarray, t: np.ndarray) -> float:
    """1 - 2 sum(p t) / (sum(p^2) + sum(t^2) + 1e-5), in float64."""
    return 1 - 2 * (p * t).sum() / ((p * p).sum() + (t * t).sum() + 1e-5)


def protonet_loss(protonet, masks: torch.Tensor, weights, gt_inds, target: float) -> dict:
    """The loss of masks (P, 2, 2) of one 2 x 2 image whose boxes cover it, assigned to the
    ground-truth instances ``gt_inds`` of GT_MASKS."""
    info = InstanceData(
        weights=torch.tensor(weights),
        bboxes=torch.tensor([[0.0, 0.0, 2.0, 2.0]] * len(weights)),
        pos_assigned_gt_inds=torch.tensor(gt_inds),
    )
    info.set_metainfo(dict(balance_target=torch.tensor(target)))
    gt = InstanceData(masks=BitmapMasks(GT_MASKS, 2, 2))
    return protonet.loss_by_feat(
        [masks.permute(1, 2, 0)], None, [gt], [dict(img_shape=(2, 2))], [info]
    )


GT_MASKS = np.array([[[1, 1], [0, 0]], [[0, 0], [0, 1]]], dtype=np.uint8)
MASKS = [[[0.5, 1.0], [0.0, 0.0]], [[0.5, 0.5], [0.5, 0.5]], [[0.2, 0.9], [0.1, 0.3]]]


def test_dice_term_against_a_hand_computation():
    protonet = MODELS.build(dict(type='RankingYOLACTProtonet', num_classes=3, in_channels=8))
    masks = torch.tensor(MASKS, requires_grad=True)
    weights, gt_inds, target = [0.8, 0.2, 0.5], [0, 1, 1], 1.7
    loss = protonet_loss(protonet, masks, weights, gt_inds, target)
    # by hand: mask 0 on gt 0: sum(pt) 1.5, sum(p^2) 1.25, sum(t^2) 2; mask 1 on gt 1: 0.5, 1, 1
    errors = [1 - 3 / 3.25001, 1 - 1 / 2.00001, dice_error(np.array(MASKS[2]), GT_MASKS[1])]
    expected = sum(w * e for w, e in zip(weights, errors)) / sum(weights)
    assert loss['dice_error'].item() == pytest.approx(expected, rel=1e-6)
    assert loss['loss_mask'].item() == pytest.approx(target, rel=1e-6)
    assert loss['mask_sb_weight'].item() == pytest.approx(target / expected, rel=1e-6)
    # the gradient is that of the weighted Dice error scaled by the balance
    loss['loss_mask'].backward()
    reference = torch.tensor(MASKS, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor(GT_MASKS[gt_inds], dtype=torch.float64)
    dice = (
        2
        * (reference * targets).sum((1, 2))
        / ((reference**2).sum((1, 2)) + (targets**2).sum((1, 2)) + 1e-5)
    )
    w = torch.tensor(weights, dtype=torch.float64)
    ((w * (1 - dice)).sum() / w.sum() * target / expected).backward()
    torch.testing.assert_close(masks.grad, reference.grad.float(), rtol=1e-5, atol=1e-7)


def test_masks_outside_the_box_are_cropped():
    """A box covering the left column keeps (with its 1 pixel padding) the whole 2 x 2 mask;
    on a 4 x 4 image, the same box keeps columns 0 .. 1 + 1 of the 4."""
    protonet = MODELS.build(dict(type='RankingYOLACTProtonet', num_classes=3, in_channels=8))
    masks = torch.full((1, 4, 4), 0.5)
    info = InstanceData(
        weights=torch.ones(1),
        bboxes=torch.tensor([[0.0, 0.0, 1.0, 4.0]]),
        pos_assigned_gt_inds=torch.tensor([0]),
    )
    info.set_metainfo(dict(balance_target=torch.tensor(1.0)))
    target = np.zeros((1, 4, 4), dtype=np.uint8)
    target[0, :, 0] = 1
    gt = InstanceData(masks=BitmapMasks(target, 4, 4))
    loss = protonet.loss_by_feat(
        [masks.permute(1, 2, 0)], None, [gt], [dict(img_shape=(4, 4))], [info]
    )
    kept = np.zeros((4, 4))
    kept[:, :2] = 0.5  # x2 = 1 + 1 padding: columns 0 and 1
    assert loss['dice_error'].item() == pytest.approx(dice_error(kept, target[0]), rel=1e-6)


def test_a_cap_on_masks_keeps_each_weight_with_its_mask():
    protonet = MODELS.build(
        dict(type='RankingYOLACTProtonet', num_classes=3, in_channels=8, max_masks_to_train=2)
    )
    weights, gt_inds = [0.9, 0.1, 0.5], [0, 1, 1]
    errors = [dice_error(np.array(m), GT_MASKS[g]) for m, g in zip(MASKS, gt_inds)]
    pairs = {
        pair: (weights[pair[0]] * errors[pair[0]] + weights[pair[1]] * errors[pair[1]])
        / (weights[pair[0]] + weights[pair[1]])
        for pair in itertools.combinations(range(3), 2)
    }
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        loss = protonet_loss(protonet, torch.tensor(MASKS), weights, gt_inds, 1.0)
        value = loss['dice_error'].item()
        match = [pair for pair, v in pairs.items() if v == pytest.approx(value, rel=1e-6)]
        assert len(match) == 1, (value, pairs)
        seen.add(match[0])
    assert len(seen) > 1  # drawn at random


def test_wrong_settings_are_refused():
    with pytest.raises(ValueError, match='use_ohem'):
        MODELS.build(dict(type='RankingYOLACTHead', num_classes=3, in_channels=8, use_ohem=True))
    with pytest.raises(ValueError, match='RankSortLoss'):
        MODELS.build(
            dict(
                type='RankingYOLACTHead',
                num_classes=3,
                in_channels=8,
                loss_cls=dict(type='aLRPLoss'),
            )
        )
    for wrong in (
        dict(with_seg_branch=True),
        dict(loss_mask_weight=6.125),
        dict(loss_mask=dict(type='DiceLoss', activate=True)),
    ):
        with pytest.raises(ValueError):
            MODELS.build(dict(type='RankingYOLACTProtonet', num_classes=3, in_channels=8, **wrong))


def test_the_protonet_needs_the_ranking_heads_positives():
    protonet = MODELS.build(dict(type='RankingYOLACTProtonet', num_classes=3, in_channels=8))
    info = InstanceData(
        bboxes=torch.zeros(0, 4), pos_assigned_gt_inds=torch.zeros(0, dtype=torch.long)
    )
    gt = InstanceData(masks=BitmapMasks(np.zeros((0, 2, 2), np.uint8), 2, 2))
    with pytest.raises(ValueError, match='RankingYOLACTHead'):
        protonet.loss_by_feat([torch.zeros(2, 2, 0)], None, [gt], [dict(img_shape=(2, 2))], [info])


def test_the_config_builds_and_trains_one_step():
    cfg = Config.fromfile(str(CONFIG))
    assert cfg.model.bbox_head.type == 'RankingYOLACTHead'
    assert cfg.model.mask_head.type == 'RankingYOLACTProtonet'
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    model.init_weights()
    assert model.bbox_head.conv_cls.out_channels == 3 * 80
    assert model.bbox_head.conv_coeff.out_channels == 3 * 32
    assert model.mask_head.segm_branch is None
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.optim_wrapper.optimizer.lr)
    model.train()
    log_vars = model.train_step(batch(80), OptimWrapper(optimizer))
    assert torch.isfinite(log_vars['loss']) and log_vars['loss'] > 0
    assert log_vars['loss_mask'] > 0

"""aLRPRPNHead on generated feature maps, against targets and errors computed independently."""

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from alrp_core import alrp_loss
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_overlaps
from mmdet_alrp.models.dense_heads.alrp_rpn_head import aLRPRPNHead

IMG = 64
STRIDES = [4, 8]
CHANNELS = 8
# Anchors: 16 x 16 (stride 4) and 32 x 32 (stride 8) squares and their 1:2, 2:1 variants,
# centred on the grid points. Each gt box coincides with one square anchor.
GT_BOXES = torch.tensor([[16.0, 16.0, 48.0, 48.0], [20.0, 4.0, 36.0, 20.0]])
KEYS = {
    'loss_rpn_cls',
    'loss_rpn_bbox',
    'rpn_alrp_cls',
    'rpn_alrp_loc',
    'rpn_sb_weight',
    'rpn_num_pos',
}


def make_head(loss_weight: float = 0.2, channels: int = CHANNELS) -> aLRPRPNHead:
    train_cfg = ConfigDict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.7,
            neg_iou_thr=0.3,
            min_pos_iou=0.3,
            match_low_quality=True,
            ignore_iof_thr=-1,
        ),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False,
    )
    test_cfg = ConfigDict(
        nms_pre=200, max_per_img=50, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0
    )
    return aLRPRPNHead(
        in_channels=channels,
        feat_channels=channels,
        anchor_generator=dict(
            type='AnchorGenerator', scales=[4], ratios=[0.5, 1.0, 2.0], strides=STRIDES
        ),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=[1.0] * 4),
        loss_cls=dict(type='aLRPLoss', loss_weight=loss_weight),
        train_cfg=train_cfg,
        test_cfg=test_cfg,
    )


def img_metas(num_imgs: int):
    return [
        dict(img_shape=(IMG, IMG), pad_shape=(IMG, IMG), scale_factor=(1.0, 1.0))
        for _ in range(num_imgs)
    ]


def gt(boxes: torch.Tensor) -> InstanceData:
    return InstanceData(bboxes=boxes, labels=torch.zeros(len(boxes), dtype=torch.long))


def features(num_imgs: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(num_imgs, CHANNELS, IMG // s, IMG // s, generator=gen) for s in STRIDES]


def flat(maps, dim):
    """Per image, (num_anchors, dim) in anchor order: level, y, x, base anchor."""
    return torch.cat([m.permute(0, 2, 3, 1).reshape(m.size(0), -1, dim) for m in maps], 1)


def oracle_targets(head, boxes):
    """1 / 0 / -1 of every anchor of an image and its gt box, by the rules of MaxIoUAssigner
    (0.7 / 0.3, low-quality matches >= 0.3: the anchors tied at a gt box's best IoU)."""
    anchors = torch.cat(
        head.prior_generator.grid_priors([(IMG // s, IMG // s) for s in STRIDES], device='cpu')
    )
    if len(boxes) == 0:
        return anchors, torch.zeros(len(anchors), dtype=torch.long), None
    ious = bbox_overlaps(anchors, boxes)
    max_iou, matched = ious.max(1)
    targets = torch.full((len(anchors),), -1, dtype=torch.long)
    targets[max_iou < 0.3] = 0
    targets[max_iou >= 0.7] = 1
    for j, best in enumerate(ious.max(0).values):
        if best >= 0.3:
            tied = ious[:, j] == best
            targets[tied], matched[tied] = 1, j
    return anchors, targets, matched


def run_loss(head, cls_scores, bbox_preds, boxes_per_img):
    return head.loss_by_feat(
        cls_scores, bbox_preds, [gt(b) for b in boxes_per_img], img_metas(len(boxes_per_img))
    )


def test_loss_matches_independent_targets_and_errors():
    torch.manual_seed(0)
    head = make_head()
    cls_scores, bbox_preds = head(features(2))
    boxes = [GT_BOXES, GT_BOXES[:1] + 4]
    losses = run_loss(head, cls_scores, bbox_preds, boxes)
    assert set(losses) == KEYS

    targets, errors = [], []
    for i, b in enumerate(boxes):
        anchors, t, matched = oracle_targets(head, b)
        pos = t == 1
        pred = head.bbox_coder.decode(anchors[pos], flat(bbox_preds, 4)[i][pos])
        giou = bbox_overlaps(pred, b[matched[pos]], mode='giou', is_aligned=True)
        targets.append(t)
        errors.append((1 - giou) / (2 * (1 - 0.7)))
    targets, errors = torch.stack(targets), torch.cat(errors)
    assert (targets == -1).any() and losses['rpn_num_pos'].item() == len(errors) > 2
    ref_cls, ref_loc = alrp_loss(flat(cls_scores, 1).reshape(2, -1).detach(), targets, errors)
    assert losses['rpn_alrp_cls'].item() == pytest.approx(ref_cls.item(), rel=1e-5)
    assert losses['rpn_alrp_loc'].item() == pytest.approx(ref_loc.item(), rel=1e-5)
    assert losses['rpn_sb_weight'].item() == 50
    assert losses['loss_rpn_cls'].item() == pytest.approx(0.2 * ref_cls.item(), rel=1e-5)
    assert losses['loss_rpn_bbox'].item() == pytest.approx(0.2 * 50 * ref_loc.item(), rel=1e-5)


def test_backward_reaches_every_parameter_and_skips_ignored_anchors():
    torch.manual_seed(0)
    head = make_head()
    cls_scores, bbox_preds = head(features(1))
    for score in cls_scores:
        score.retain_grad()
    losses = run_loss(head, cls_scores, bbox_preds, [GT_BOXES])
    (losses['loss_rpn_cls'] + losses['loss_rpn_bbox']).backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        if param.dim() > 1:  # biases of a ranking loss may sum to 0
            assert param.grad.abs().sum() > 0, name
    _, targets, _ = oracle_targets(head, GT_BOXES)
    grad = flat([s.grad for s in cls_scores], 1).reshape(-1)
    assert (targets == -1).sum() > 10
    assert (grad[targets == -1] == 0).all()
    assert (grad[targets == 1] < 0).all()
    assert (grad[targets == 0] != 0).any()


def test_hand_made_positive_error():
    # One anchor (the 32 x 32 square at (32, 32)) matches the gt box; with all deltas
    # (0.1, 0, log 1.2, 0) it decodes to x in [32 + 3.2 - 19.2, 32 + 3.2 + 19.2] = [16, 54.4],
    # y in [16, 48]: IoU = GIoU = 32 / 38.4. Ranked far above every negative, rank = 1 and
    # L_loc equals its error.
    head = make_head()
    _, targets, _ = oracle_targets(head, GT_BOXES[:1])
    assert (targets == 1).sum() == 1
    logits = torch.where(targets == 1, 10.0, -10.0)
    sizes = [(IMG // s) ** 2 * 3 for s in STRIDES]
    cls_scores = [
        lvl.reshape(1, IMG // s, IMG // s, 3).permute(0, 3, 1, 2)
        for lvl, s in zip(logits.split(sizes), STRIDES)
    ]
    delta = torch.tensor([0.1, 0.0, torch.log(torch.tensor(1.2)), 0.0])
    bbox_preds = [
        delta.repeat(3).view(1, 12, 1, 1).expand(1, 12, IMG // s, IMG // s) for s in STRIDES
    ]
    losses = run_loss(head, cls_scores, bbox_preds, [GT_BOXES[:1]])
    pred = torch.tensor([[16.0, 16.0, 54.4, 48.0]])
    giou = bbox_overlaps(pred, GT_BOXES[:1], mode='giou', is_aligned=True).item()
    assert giou == pytest.approx(32 / 38.4)
    assert losses['rpn_alrp_loc'].item() == pytest.approx((1 - giou) / 0.6, rel=1e-5)
    assert losses['rpn_alrp_cls'].item() == 0


def test_head_weight_scales_both_parts():
    feats = features(1)
    results = []
    for weight in (0.2, 1.0):
        torch.manual_seed(0)
        head = make_head(loss_weight=weight)
        results.append(run_loss(head, *head(feats), [GT_BOXES]))
    light, full = results
    assert light['rpn_alrp_cls'].item() == pytest.approx(full['rpn_alrp_cls'].item())
    assert light['loss_rpn_cls'].item() == pytest.approx(0.2 * full['loss_rpn_cls'].item())
    assert light['loss_rpn_bbox'].item() == pytest.approx(0.2 * full['loss_rpn_bbox'].item())
    assert full['loss_rpn_bbox'].item() > 0


def test_images_without_ground_truth():
    torch.manual_seed(0)
    head = make_head()
    cls_scores, bbox_preds = head(features(2))
    mixed = run_loss(head, cls_scores, bbox_preds, [GT_BOXES, torch.zeros(0, 4)])
    assert all(torch.isfinite(v).all() for v in mixed.values())
    _, targets, _ = oracle_targets(head, GT_BOXES)
    assert mixed['rpn_num_pos'].item() == (targets == 1).sum()

    empty = run_loss(head, cls_scores, bbox_preds, [torch.zeros(0, 4)] * 2)
    assert empty['loss_rpn_cls'].item() == 0 and empty['loss_rpn_bbox'].item() == 0
    assert empty['rpn_num_pos'].item() == 0
    (empty['loss_rpn_cls'] + empty['loss_rpn_bbox']).backward()
    assert all(p.grad is not None for p in head.parameters())


def test_sigmoid_layers_and_bad_config():
    head = make_head()
    assert head.use_sigmoid_cls and head.cls_out_channels == 1
    assert head.rpn_cls.out_channels == 3
    with pytest.raises(ValueError, match='aLRPLoss'):
        aLRPRPNHead(in_channels=4, loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True))
    with pytest.raises(ValueError, match='tau'):
        aLRPRPNHead(in_channels=4, loss_cls=dict(type='aLRPLoss', tau=1.0))


def test_loss_and_predict_make_sigmoid_proposals():
    torch.manual_seed(0)
    head = make_head()
    feats = features(2)
    samples = []
    for boxes in (GT_BOXES, torch.zeros(0, 4)):
        sample = DetDataSample(metainfo=img_metas(1)[0])
        sample.gt_instances = gt(boxes)
        samples.append(sample)
    losses, proposals = head.loss_and_predict(feats, samples, proposal_cfg=head.test_cfg)
    assert KEYS <= set(losses)
    cls_scores, _ = head(feats)
    for i, result in enumerate(proposals):
        num = len(result)
        assert 0 < num <= 50
        assert result.bboxes.shape == (num, 4) and result.scores.shape == (num,)
        assert (result.labels == 0).all()
        # the best proposal keeps the best anchor's sigmoid score
        best = flat(cls_scores, 1)[i].max().sigmoid()
        assert result.scores.max().item() == pytest.approx(best.item(), rel=1e-6)


def test_learns_to_rank_the_positives():
    torch.manual_seed(0)
    head = make_head(channels=CHANNELS)
    feats = features(1, seed=1)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.005)
    values = []
    for _ in range(60):
        losses = run_loss(head, *head(feats), [GT_BOXES])
        values.append(losses['rpn_alrp_cls'].item())
        optimizer.zero_grad()
        (losses['loss_rpn_cls'] + losses['loss_rpn_bbox']).backward()
        optimizer.step()
    assert values[-1] < 0.5 * values[0]

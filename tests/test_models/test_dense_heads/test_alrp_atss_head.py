"""aLRPATSSHead: mmdet's ATSSHead (GroupNorm, a learnt scale per level) without its centerness
branch, trained with aLRP Loss on ATSS's own targets. Its loss and gradients against the dense
oracle on targets from mmdet's ATSSHead, ignored anchors, any number of classes, the ATSS
assigner, prediction by the class score alone (what it shares with aLRPFCOSHead:
test_centerness_free_heads.py)."""

import math

import pytest
import torch
from mmengine.config import ConfigDict

from mmdet.models.dense_heads import ATSSHead
from mmdet.structures import DetDataSample
from mmdet_alrp.models.dense_heads import aLRPATSSHead

from ..alrp_head_oracle import assert_matches_oracle, onehot_labels
from .head_utils import (
    ALRP_KEYS,
    ATSS_TRAIN_CFG,
    GTS,
    IMG_SIZE,
    IN_CHANNELS,
    MAX_IOU_TRAIN_CFG,
    TEST_CFG,
    assert_detections,
    feats,
    img_metas,
    instances,
    total,
)

STRIDES = [8, 16, 32, 64, 128]
STDS = [0.1, 0.1, 0.2, 0.2]
# mmdet's ATSS anchors: one per location, 8 strides wide.
HEAD_ARGS = dict(
    in_channels=IN_CHANNELS,
    feat_channels=8,
    stacked_convs=1,
    norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
    anchor_generator=dict(
        type='AnchorGenerator',
        ratios=[1.0],
        octave_base_scale=8,
        scales_per_octave=1,
        strides=STRIDES,
    ),
    bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=STDS),
    init_cfg=None,
)


def make_head(num_classes: int = 3, train_cfg: dict = ATSS_TRAIN_CFG, **kwargs) -> aLRPATSSHead:
    torch.manual_seed(0)
    return aLRPATSSHead(
        num_classes=num_classes,
        train_cfg=ConfigDict(train_cfg),
        test_cfg=ConfigDict(TEST_CFG),
        **HEAD_ARGS,
        **kwargs,
    )


def sizes():
    return [(math.ceil(IMG_SIZE / s), math.ceil(IMG_SIZE / s)) for s in STRIDES]


def outputs(num_imgs: int, num_classes: int, seed: int = 0):
    """Generated head outputs as leaves: logits N(0, 1), deltas N(0, 0.5^2) (in std units)."""
    gen = torch.Generator().manual_seed(seed)
    cls_scores = [
        torch.randn(num_imgs, num_classes, h, w, generator=gen).requires_grad_() for h, w in sizes()
    ]
    deltas = [
        (0.5 * torch.randn(num_imgs, 4, h, w, generator=gen)).requires_grad_() for h, w in sizes()
    ]
    return cls_scores, deltas


def flatten(maps, channels):
    """Image-major, then level, then location."""
    num_imgs = maps[0].size(0)
    return torch.cat(
        [m.permute(0, 2, 3, 1).reshape(num_imgs, -1, channels) for m in maps], 1
    ).reshape(-1, channels)


def decode(anchors, deltas):
    """DeltaXYWHBBoxCoder with means 0 and stds STDS, written out."""
    deltas = deltas * deltas.new_tensor(STDS)
    centres, wh = (anchors[:, :2] + anchors[:, 2:]) / 2, anchors[:, 2:] - anchors[:, :2]
    centres, wh = centres + deltas[:, :2] * wh, wh * deltas[:, 2:].exp()
    return torch.cat([centres - wh / 2, centres + wh / 2], 1)


@pytest.mark.parametrize('num_classes', [1, 3, 7])
def test_loss_and_gradients_match_the_oracle_on_atss_targets(num_classes):
    """L_cls, SB L_loc and their gradients on every output, against the dense float64 aLRP
    Loss on the targets of mmdet's ATSSHead; its anchors of label weight 0 (across the border
    of the images, allowed_border=0; the second image is 100 x 90) are ignored: -1 for every
    class, and no gradient."""
    train_cfg = dict(ATSS_TRAIN_CFG, allowed_border=0)
    head = make_head(num_classes, train_cfg)
    gts = [instances(gt.bboxes.tolist(), (gt.labels % num_classes).tolist()) for gt in GTS]
    metas = img_metas(2)
    metas[1]['img_shape'] = (100, 90)
    cls_scores, deltas = outputs(len(gts), num_classes)
    losses = head.loss_by_feat(cls_scores, deltas, gts, metas)
    assert set(losses) == ALRP_KEYS
    assert losses['sb_weight'] == 50

    reference = ATSSHead(num_classes=num_classes, train_cfg=ConfigDict(train_cfg), **HEAD_ARGS)
    anchor_list, valid_list = reference.get_anchors(sizes(), metas, device='cpu')
    anchors, classes, weights, target_boxes, _, _ = reference.get_targets(
        anchor_list, valid_list, gts, metas
    )
    anchors = torch.cat(anchors, 1).reshape(-1, 4).double()
    classes = torch.cat(classes, 1).reshape(-1)
    ignored = torch.cat(weights, 1).reshape(-1) == 0
    target_boxes = torch.cat(target_boxes, 1).reshape(-1, 4).double()  # gt boxes (decoded)
    pos = classes < num_classes
    assert ignored.sum() > 10 and pos.sum() > 0
    labels = onehot_labels(classes, num_classes, ignored)
    pred = decode(anchors[pos], flatten([d.double() for d in deltas], 4)[pos])
    assert_matches_oracle(
        losses,
        cls_scores + deltas,
        flatten([s.double() for s in cls_scores], num_classes),
        labels,
        pred,
        target_boxes[pos],
    )

    losses = head.loss_by_feat(cls_scores, deltas, gts, metas)
    grads = torch.autograd.grad(total(losses), cls_scores)
    grads = flatten(grads, num_classes)
    assert (grads[ignored] == 0).all() and (grads[~ignored & ~pos] != 0).any()
    if num_classes == 7:  # only the columns of the boxes' classes (0, 1, 2) have positives
        assert labels[:, :3].eq(1).any() and not labels[:, 3:].eq(1).any()


def test_needs_the_atss_assigner():
    with pytest.raises(ValueError, match='ATSSAssigner'):
        make_head(train_cfg=MAX_IOU_TRAIN_CFG)


def test_predict_scores_by_the_class_logit_alone():
    """One logit above the others: one detection, scored sigmoid(logit) (no centerness factor),
    the box of its anchor (zero deltas)."""
    head = make_head()
    cls_scores = [torch.full((1, 3, h, w), -10.0) for h, w in sizes()]
    cls_scores[0][0, 2, 5, 6] = 3.0  # anchor centred at (6 * 8, 5 * 8), 64 px wide, class 2
    deltas = [torch.zeros(1, 4, h, w) for h, w in sizes()]
    (result,) = head.predict_by_feat(cls_scores, deltas, batch_img_metas=img_metas(), rescale=False)
    assert result.labels.tolist() == [2]
    assert result.scores.item() == pytest.approx(1 / (1 + math.exp(-3)), rel=1e-6)
    torch.testing.assert_close(result.bboxes, torch.tensor([[16.0, 8.0, 80.0, 72.0]]))

    results = head.predict(feats(STRIDES, 2), [DetDataSample(metainfo=m) for m in img_metas(2)])
    assert_detections(results, 3)
    assert all(len(r) > 0 for r in results)

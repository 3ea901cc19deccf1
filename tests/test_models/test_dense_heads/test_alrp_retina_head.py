"""aLRPRetinaHead: targets, localisation errors and prediction (what it shares with the other
ranking heads is in test_ranking_heads.py)."""

import math
from functools import partial

import pytest
import torch
from mmengine.config import ConfigDict

from mmdet.models.dense_heads import ATSSHead
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet_alrp.models.dense_heads import aLRPATSSHead, aLRPRetinaHead

from .head_utils import (
    ATSS_TRAIN_CFG,
    GTS,
    IMG_SIZE,
    IN_CHANNELS,
    assert_alrp_num_classes,
    assert_detections,
    feats,
    giou,
    img_metas,
    instances,
    make_atss_head,
    make_retina_head,
    recording_alrp_loss,
    strides_of,
)

make_head = partial(make_retina_head, aLRPRetinaHead)

# One anchor per location, 32 x 32 at stride 8: neighbours one stride apart have IoU 0.6.
ONE_ANCHOR = dict(
    type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1, ratios=[1.0], strides=[8, 16]
)


@pytest.mark.parametrize('num_classes', [1, 3, 7])
def test_num_classes(num_classes):
    assert_alrp_num_classes(make_head(num_classes=num_classes), num_classes)


def hand_decode(anchor, delta):
    """DeltaXYWHBBoxCoder with means 0 and stds 1, written out."""
    ax, ay = (anchor[0] + anchor[2]) / 2, (anchor[1] + anchor[3]) / 2
    aw, ah = anchor[2] - anchor[0], anchor[3] - anchor[1]
    cx, cy = ax + delta[0] * aw, ay + delta[1] * ah
    w, h = aw * math.exp(delta[2]), ah * math.exp(delta[3])
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


@pytest.mark.parametrize('reg_decoded_bbox', [True, False])
def test_localisation_error_is_normalised_giou(reg_decoded_bbox):
    head = make_head(
        anchor_generator=ONE_ANCHOR,
        loss_cls=dict(type='aLRPLoss', tau=0.5),
        reg_decoded_bbox=reg_decoded_bbox,
    )
    gt = [56.0, 56.0, 88.0, 88.0]
    sizes = [(IMG_SIZE // s, IMG_SIZE // s) for s in (8, 16)]
    cls_scores = [torch.zeros(1, 3, h, w) for h, w in sizes]
    zero = [torch.zeros(1, 4, h, w) for h, w in sizes]
    with recording_alrp_loss() as calls:
        head.loss_by_feat(cls_scores, zero, [instances([gt], [1])], img_metas())
    _, labels, errors = calls[0]
    anchors = torch.cat(head.prior_generator.grid_priors(sizes, device='cpu'))
    pos = torch.nonzero(labels[:, 1] == 1).squeeze(1)
    # Zero deltas: the boxes are the anchors. By hand: the anchor equal to the box has error 0,
    # one shifted by a stride has IoU = GIoU = 24 * 32 / (2 * 32 * 32 - 24 * 32) = 0.6, error
    # (1 - 0.6) / (2 * (1 - 0.5)) = 0.4.
    by_anchor = {tuple(anchors[i].tolist()): e.item() for i, e in zip(pos, errors)}
    assert by_anchor[tuple(gt)] == pytest.approx(0, abs=1e-6)
    assert by_anchor[(48.0, 56.0, 80.0, 88.0)] == pytest.approx(0.4, abs=1e-6)
    assert by_anchor[(56.0, 64.0, 88.0, 96.0)] == pytest.approx(0.4, abs=1e-6)

    # Random deltas, against boxes decoded by hand.
    gen = torch.Generator().manual_seed(2)
    deltas = [0.3 * torch.randn(1, 4, h, w, generator=gen) for h, w in sizes]
    flat = torch.cat([d.permute(0, 2, 3, 1).reshape(-1, 4) for d in deltas])
    with recording_alrp_loss() as calls:
        head.loss_by_feat(cls_scores, deltas, [instances([gt], [1])], img_metas())
    errors = calls[0][2]
    expected = [
        (1 - giou(hand_decode(anchors[i].tolist(), flat[i].tolist()), gt)) / (2 * 0.5) for i in pos
    ]
    torch.testing.assert_close(errors, torch.tensor(expected), rtol=1e-5, atol=1e-5)


def test_tau_scales_the_error():
    head = make_head(anchor_generator=ONE_ANCHOR, loss_cls=dict(type='aLRPLoss', tau=0.75))
    sizes = [(IMG_SIZE // s, IMG_SIZE // s) for s in (8, 16)]
    with recording_alrp_loss() as calls:
        head.loss_by_feat(
            [torch.zeros(1, 3, h, w) for h, w in sizes],
            [torch.zeros(1, 4, h, w) for h, w in sizes],
            [instances([[56.0, 56.0, 88.0, 88.0]], [0])],
            img_metas(),
        )
    assert calls[0][2].max().item() == pytest.approx((1 - 0.6) / (2 * 0.25), abs=1e-6)


def test_atss_targets_are_atss_heads():
    """aLRPATSSHead's positives and classes are those of mmdet's ATSSHead, also with
    anchors outside the image (per-level counts of the anchors inside)."""
    train_cfg = dict(ATSS_TRAIN_CFG, allowed_border=0)
    head = make_atss_head(aLRPATSSHead, train_cfg=train_cfg)
    atss = ATSSHead(
        num_classes=3,
        in_channels=IN_CHANNELS,
        feat_channels=8,
        stacked_convs=1,
        norm_cfg=None,
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=4,
            scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0],
            strides=[8, 16, 32, 64, 128],
        ),
        train_cfg=ConfigDict(train_cfg),
        init_cfg=None,
    )
    metas = img_metas(2)
    metas[1]['img_shape'] = (100, 90)
    x = feats(strides_of(head), 2)
    cls_scores, bbox_preds = head(x)
    with recording_alrp_loss() as calls:
        head.loss_by_feat(cls_scores, bbox_preds, GTS, metas)
    labels = calls[0][1]
    featmap_sizes = [s.shape[-2:] for s in cls_scores]
    anchor_list, valid_list = atss.get_anchors(featmap_sizes, metas, device='cpu')
    _, ref_labels, ref_weights, _, _, _ = atss.get_targets(anchor_list, valid_list, GTS, metas)
    ref_labels = torch.cat(ref_labels, 1).reshape(-1)
    ref_ignored = torch.cat(ref_weights, 1).reshape(-1) == 0
    assert ref_ignored.any()  # anchors across the border of the images
    pos = ref_labels < 3
    assert pos.sum() > 0
    torch.testing.assert_close(labels[pos].argmax(1), ref_labels[pos])
    assert (labels[pos].max(1).values == 1).all()
    assert (labels[ref_ignored] == -1).all()
    assert (labels[~pos & ~ref_ignored] == 0).all()


def test_predict_uses_sigmoid_scores():
    head = make_head(anchor_generator=ONE_ANCHOR)
    sizes = [(IMG_SIZE // s, IMG_SIZE // s) for s in (8, 16)]
    cls_scores = [torch.full((1, 3, h, w), -10.0) for h, w in sizes]
    cls_scores[0][0, 2, 5, 6] = 3.0  # anchor at (6 * 8, 5 * 8) of the stride 8 level, class 2
    bbox_preds = [torch.zeros(1, 4, h, w) for h, w in sizes]
    result = head.predict_by_feat(
        cls_scores, bbox_preds, batch_img_metas=img_metas(), rescale=False
    )[0]
    assert result.bboxes.shape == (1, 4) and result.scores.shape == (1,)
    assert result.labels.tolist() == [2]
    assert result.scores.item() == pytest.approx(1 / (1 + math.exp(-3)), rel=1e-5)
    torch.testing.assert_close(result.bboxes, torch.tensor([[32.0, 24.0, 64.0, 56.0]]))

    head = make_head()
    results = head.predict(
        feats(strides_of(head), 2), [DetDataSample(metainfo=m) for m in img_metas(2)]
    )
    assert_detections(results, 3)


def test_built_from_config_without_loss_bbox():
    head = MODELS.build(
        dict(
            type='aLRPRetinaHead',
            num_classes=3,
            in_channels=IN_CHANNELS,
            feat_channels=8,
            stacked_convs=1,
            init_cfg=None,
            loss_bbox=None,
        )
    )
    assert head.loss_bbox is None and head.use_sigmoid_cls and head.reg_decoded_bbox
    assert head.loss_cls.self_balance.weight == 50

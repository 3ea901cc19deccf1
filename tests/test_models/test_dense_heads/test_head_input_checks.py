"""Bad ground truth and non-finite outputs are named where they enter the dense heads: labels
outside 0 .. C-1, inverted or non-finite boxes, NaN regression outputs, a zero-width box under
AP Loss's encoded regression, NaN RPN logits at prediction."""

from functools import partial

import pytest
import torch
from mmengine.config import ConfigDict

from mmdet_alrp.models.dense_heads import (
    APLossFoveaHead,
    APLossRetinaHead,
    aLRPFoveaHead,
    aLRPRetinaHead,
)
from mmdet_alrp.models.dense_heads.alrp_rpn_head import aLRPRPNHead

from .head_utils import (
    GTS,
    feats,
    img_metas,
    instances,
    losses_of,
    make_fovea_head,
    make_retina_head,
    strides_of,
)

HEADS = [
    pytest.param(partial(make_retina_head, aLRPRetinaHead), id='alrp-retina'),
    pytest.param(partial(make_fovea_head, aLRPFoveaHead), id='alrp-fovea'),
    pytest.param(partial(make_retina_head, APLossRetinaHead), id='ap-retina'),
    pytest.param(partial(make_fovea_head, APLossFoveaHead), id='ap-fovea'),
]
AP_HEADS = HEADS[2:]
BOX = [20.0, 30.0, 70.0, 90.0]


def bad_batch(boxes, labels):
    """Two images, the second one with the given ground truth."""
    return [GTS[0], instances(boxes, labels)]


@pytest.mark.parametrize('make_head', HEADS)
@pytest.mark.parametrize('label', [-1, 3, 7])
def test_label_outside_classes_is_named(make_head, label):
    """Label -1 would index the last class; labels >= C would make silent background."""
    metas = img_metas(2)
    metas[1].update(img_id=42, img_path='img_42.jpg')
    head = make_head()
    cls_scores, bbox_preds = head(feats(strides_of(head), 2))
    with pytest.raises(
        ValueError,
        match=rf'label {label} of image 1 of the batch '
        r'\(img_id 42, img_path img_42.jpg\) lies outside 0 .. 2',
    ):
        head.loss_by_feat(cls_scores, bbox_preds, bad_batch([BOX, BOX], [0, label]), metas)


@pytest.mark.parametrize('make_head', HEADS)
@pytest.mark.parametrize('box', [[70.0, 30.0, 20.0, 90.0], [20.0, 90.0, 70.0, 30.0]])
def test_inverted_box_is_named(make_head, box):
    with pytest.raises(ValueError, match=r'of image 1 of the batch has x2 < x1 or y2 < y1'):
        losses_of(make_head(), bad_batch([box], [1]))


@pytest.mark.parametrize('make_head', HEADS)
def test_non_finite_box_is_named(make_head):
    with pytest.raises(ValueError, match='NaN or Inf in a ground-truth box of image 1'):
        losses_of(make_head(), bad_batch([[20.0, 30.0, float('nan'), 90.0]], [1]))


@pytest.mark.parametrize('make_head', HEADS)
def test_nan_regression_outputs_raise_the_same_error(make_head):
    """A non-finite regression output is named by every head (no silent NaN loss_bbox)."""
    head = make_head()
    cls_scores, bbox_preds = head(feats(strides_of(head), 2))
    bbox_preds = [torch.full_like(pred, float('nan')) for pred in bbox_preds]
    with pytest.raises(ValueError, match=r'NaN or Inf in the regression outputs \(bbox_preds\)'):
        head.loss_by_feat(cls_scores, bbox_preds, GTS, img_metas(2))


def test_zero_width_box_under_encoded_regression_is_named():
    """A zero-width box is valid ground truth, but its log-width encoding is infinite."""
    head = make_retina_head(APLossRetinaHead)
    with pytest.raises(ValueError, match='regression targets.*zero width'):
        losses_of(head, [instances([[40.0, 30.0, 40.0, 90.0]], [1])])
    aLRP = losses_of(make_retina_head(aLRPRetinaHead), [instances([[40.0, 30.0, 40.0, 90.0]], [1])])
    assert all(torch.isfinite(value).all() for value in aLRP.values())  # GIoU is defined


def make_rpn_head() -> aLRPRPNHead:
    torch.manual_seed(0)
    return aLRPRPNHead(
        in_channels=8,
        feat_channels=8,
        anchor_generator=dict(type='AnchorGenerator', scales=[4], ratios=[1.0], strides=[8, 16]),
        train_cfg=ConfigDict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                ignore_iof_thr=-1,
            ),
            sampler=dict(type='PseudoSampler'),
            allowed_border=-1,
            pos_weight=-1,
            debug=False,
        ),
        test_cfg=ConfigDict(
            nms_pre=100, max_per_img=20, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0
        ),
    )


def test_rpn_never_proposes_nan_scores():
    head = make_rpn_head()
    cls_scores, bbox_preds = head(feats([8, 16], 2))
    metas = img_metas(2)
    proposals = head.predict_by_feat(
        cls_scores, bbox_preds, batch_img_metas=metas, cfg=head.test_cfg
    )
    assert all(torch.isfinite(p.scores).all() and len(p) > 0 for p in proposals)
    cls_scores[1][1, 0, 2, 3] = float('nan')
    with pytest.raises(ValueError, match='NaN in the RPN logits of image 1 of the batch'):
        head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas, cfg=head.test_cfg)


def test_rpn_checks_boxes_of_its_ground_truth():
    head = make_rpn_head()
    cls_scores, bbox_preds = head(feats([8, 16], 1))
    gt = instances([[50.0, 10.0, 10.0, 50.0]], [0])
    with pytest.raises(ValueError, match='x2 < x1'):
        head.loss_by_feat(cls_scores, bbox_preds, [gt], img_metas(1))

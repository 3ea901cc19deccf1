"""aLRPFCOSHead: mmdet's FCOSHead without its centerness branch, trained with aLRP Loss on
FCOS's own targets. Its loss and gradients against the dense oracle on targets from mmdet's
FCOSHead, any number of classes, prediction by the class score alone (what it shares with
aLRPATSSHead: test_centerness_free_heads.py). FCOS has no ignore notion: every point is a
positive or a negative (FCOSHead's targets have no weights), so no logit is ignored (the oracle
test checks every label is 1 or 0)."""

import math

import pytest
import torch
from mmengine.config import ConfigDict

from mmdet.models.dense_heads import FCOSHead
from mmdet.structures import DetDataSample
from mmdet_alrp.models.dense_heads import aLRPFCOSHead

from ..alrp_head_oracle import assert_matches_oracle, onehot_labels
from .head_utils import (
    ALRP_KEYS,
    GTS,
    IMG_SIZE,
    IN_CHANNELS,
    TEST_CFG,
    assert_detections,
    feats,
    img_metas,
    instances,
)

STRIDES = [8, 16, 32, 64, 128]
# FCOS's ranges scaled to a 128 x 128 image: a level takes the points whose largest distance to
# the box sides is up to 4 strides (the boxes of GTS fall on the first three levels).
REGRESS_RANGES = ((-1, 32), (32, 64), (64, 128), (128, 256), (256, 1e8))
HEAD_ARGS = dict(
    in_channels=IN_CHANNELS,
    feat_channels=8,
    stacked_convs=1,
    strides=STRIDES,
    regress_ranges=REGRESS_RANGES,
    norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
    init_cfg=None,
)


def make_head(num_classes: int = 3, **kwargs) -> aLRPFCOSHead:
    torch.manual_seed(0)
    return aLRPFCOSHead(
        num_classes=num_classes, test_cfg=ConfigDict(TEST_CFG), **HEAD_ARGS, **kwargs
    )


def sizes(num_levels: int = len(STRIDES)):
    return [(math.ceil(IMG_SIZE / s), math.ceil(IMG_SIZE / s)) for s in STRIDES[:num_levels]]


def outputs(num_imgs: int, num_classes: int, seed: int = 0):
    """Generated head outputs as leaves: logits N(0, 1), distances (l, t, r, b) in 4..60 px."""
    gen = torch.Generator().manual_seed(seed)
    cls_scores = [
        torch.randn(num_imgs, num_classes, h, w, generator=gen).requires_grad_() for h, w in sizes()
    ]
    distances = [
        (4 + 56 * torch.rand(num_imgs, 4, h, w, generator=gen)).requires_grad_() for h, w in sizes()
    ]
    return cls_scores, distances


def flatten(maps, channels):
    """Level-major, then image, then location (FCOSHead.loss_by_feat's order)."""
    return torch.cat([m.permute(0, 2, 3, 1).reshape(-1, channels) for m in maps])


def decode(points, distances):
    """Boxes (x1, y1, x2, y2) of points (x, y) and distances (l, t, r, b), by the definition."""
    return torch.cat([points - distances[:, :2], points + distances[:, 2:]], 1)


@pytest.mark.parametrize('num_classes', [1, 3, 7])
def test_loss_and_gradients_match_the_oracle_on_fcos_targets(num_classes):
    """L_cls, SB L_loc and their gradients on every output, against the dense float64 aLRP
    Loss on the targets of mmdet's FCOSHead (classes of its points, distances decoded here)."""
    head = make_head(num_classes)
    gts = [instances(gt.bboxes.tolist(), (gt.labels % num_classes).tolist()) for gt in GTS]
    cls_scores, distances = outputs(len(gts), num_classes)
    losses = head.loss_by_feat(cls_scores, distances, gts, img_metas(len(gts)))
    assert set(losses) == ALRP_KEYS
    assert losses['sb_weight'] == 50

    reference = FCOSHead(num_classes=num_classes, **HEAD_ARGS)
    points = reference.prior_generator.grid_priors(sizes(), dtype=torch.float32, device='cpu')
    classes, target_distances = reference.get_targets(points, gts)
    classes, target_distances = torch.cat(classes), torch.cat(target_distances).double()
    flat_points = torch.cat([p.repeat(len(gts), 1) for p in points]).double()
    pos = classes < num_classes
    labels = onehot_labels(classes, num_classes)
    assert set(labels.unique().tolist()) == {0, 1}  # no ignored point
    pred = flatten([d.double() for d in distances], 4)[pos]
    assert_matches_oracle(
        losses,
        cls_scores + distances,
        flatten([s.double() for s in cls_scores], num_classes),
        labels,
        decode(flat_points[pos], pred),
        decode(flat_points[pos], target_distances[pos]),
    )
    if num_classes == 7:  # the boxes' classes 0, 1, 2 are the only columns with positives
        assert (labels[:, :3].sum(0) > 0).all() and labels[:, 3:].sum() == 0


def test_predict_scores_by_the_class_logit_alone():
    """One logit above the others: one detection, scored sigmoid(logit) (no centerness factor),
    the box of its point and distances."""
    head = make_head()
    cls_scores = [torch.full((1, 3, h, w), -10.0) for h, w in sizes()]
    cls_scores[0][0, 1, 5, 6] = 2.0  # point (6.5 * 8, 5.5 * 8) = (52, 44) of stride 8, class 1
    distances = [torch.full((1, 4, h, w), 10.0) for h, w in sizes()]
    distances[0][0, :, 5, 6] = torch.tensor([12.0, 4.0, 20.0, 30.0])
    (result,) = head.predict_by_feat(
        cls_scores, distances, batch_img_metas=img_metas(), rescale=False
    )
    assert result.labels.tolist() == [1]
    assert result.scores.item() == pytest.approx(1 / (1 + math.exp(-2)), rel=1e-6)
    torch.testing.assert_close(result.bboxes, torch.tensor([[40.0, 40.0, 72.0, 74.0]]))

    results = head.predict(feats(STRIDES, 2), [DetDataSample(metainfo=m) for m in img_metas(2)])
    assert_detections(results, 3)
    assert all(len(r) > 0 for r in results)

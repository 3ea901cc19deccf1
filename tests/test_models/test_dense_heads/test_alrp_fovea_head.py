"""aLRPFoveaHead: targets, localisation errors and prediction (what it shares with the other
ranking heads is in test_ranking_heads.py)."""

import math
from functools import partial

import pytest
import torch

from mmdet.structures import DetDataSample
from mmdet_alrp.models.dense_heads import aLRPFoveaHead

from .head_utils import (
    IMG_SIZE,
    assert_alrp_num_classes,
    assert_detections,
    feats,
    giou,
    img_metas,
    instances,
    make_fovea_head,
    recording_alrp_loss,
    strides_of,
)

make_head = partial(make_fovea_head, aLRPFoveaHead)


@pytest.mark.parametrize('num_classes', [1, 3, 7])
def test_num_classes(num_classes):
    labels = assert_alrp_num_classes(make_head(num_classes=num_classes), num_classes)
    assert (labels >= 0).all()  # FoveaBox has no ignore band


def fovea_positives():
    """The positive points of the box (40, 40, 88, 88) (edge sqrt(area) = 48: levels 0 and 1),
    by FoveaBox's rule: grid cells c with ceil(x1 + 0.6 hw - 0.5) <= c <= floor(x1 + 1.4 hw - 0.5)
    in stride units, hw the half width; the point of cell c is (c + 0.5) * stride.
    Level 0 (stride 8, base 16): box 5..11, hw 3: cells 7..8 -> points 60, 68.
    Level 1 (stride 16, base 32): box 2.5..5.5, hw 1.5: cells 3..4 -> points 56, 72.
    Returned in the flattened order (level, y, x): (x, y, base edge)."""
    return [(x, y, 16.0) for y in (60.0, 68.0) for x in (60.0, 68.0)] + [
        (x, y, 32.0) for y in (56.0, 72.0) for x in (56.0, 72.0)
    ]


def test_localisation_error_is_normalised_giou():
    head = make_head(loss_cls=dict(type='aLRPLoss', tau=0.5))
    gt = [40.0, 40.0, 88.0, 88.0]
    sizes = [(IMG_SIZE // s, IMG_SIZE // s) for s in strides_of(head)]
    cls_scores = [torch.zeros(1, 3, h, w) for h, w in sizes]
    gen = torch.Generator().manual_seed(3)
    for scale in (0.0, 0.3):
        deltas = [scale * torch.randn(1, 4, h, w, generator=gen) for h, w in sizes]
        with recording_alrp_loss() as calls:
            head.loss_by_feat(cls_scores, deltas, [instances([gt], [1])], img_metas())
        _, labels, errors = calls[0]
        starts = [0] + torch.tensor([h * w for h, w in sizes]).cumsum(0).tolist()
        pos = torch.nonzero(labels[:, 1] == 1).squeeze(1)
        assert labels.sum() == len(fovea_positives())
        expected = []
        for index, (x, y, base) in zip(pos.tolist(), fovea_positives()):
            level = 0 if base == 16 else 1
            stride = strides_of(head)[level]
            w = sizes[level][1]
            offset = index - starts[level]
            assert ((offset % w + 0.5) * stride, (offset // w + 0.5) * stride) == (x, y)
            d = deltas[level][0, :, offset // w, offset % w].tolist()
            box = [
                x - base * math.exp(d[0]),
                y - base * math.exp(d[1]),
                x + base * math.exp(d[2]),
                y + base * math.exp(d[3]),
            ]
            expected.append((1 - giou(box, gt)) / (2 * 0.5))
        torch.testing.assert_close(errors, torch.tensor(expected), rtol=1e-5, atol=1e-5)
    # Zero predictions, by hand: the point (60, 60) of level 0 predicts (44, 44, 76, 76), inside
    # the box: GIoU = IoU = 32^2 / 48^2 = 4/9, error 5/9. The point (56, 56) of level 1 predicts
    # (24, 24, 88, 88), which holds the box: GIoU = IoU = 48^2 / 64^2, error 7/16.
    with recording_alrp_loss() as calls:
        head.loss_by_feat(
            cls_scores,
            [torch.zeros(1, 4, h, w) for h, w in sizes],
            [instances([gt], [1])],
            img_metas(),
        )
    errors = calls[0][2]
    assert errors[0].item() == pytest.approx(5 / 9, abs=1e-6)
    assert errors[4].item() == pytest.approx(7 / 16, abs=1e-6)


def test_predict_uses_sigmoid_scores():
    head = make_head()
    sizes = [(IMG_SIZE // s, IMG_SIZE // s) for s in strides_of(head)]
    cls_scores = [torch.full((1, 3, h, w), -10.0) for h, w in sizes]
    cls_scores[1][0, 0, 3, 4] = 2.0  # point (72, 56) of stride 16, base edge 32, class 0
    bbox_preds = [torch.zeros(1, 4, h, w) for h, w in sizes]
    result = head.predict_by_feat(
        cls_scores, bbox_preds, batch_img_metas=img_metas(), rescale=False
    )[0]
    assert result.labels.tolist() == [0]
    assert result.scores.item() == pytest.approx(1 / (1 + math.exp(-2)), rel=1e-5)
    torch.testing.assert_close(result.bboxes, torch.tensor([[40.0, 24.0, 104.0, 88.0]]))

    results = head.predict(
        feats(strides_of(head), 2), [DetDataSample(metainfo=m) for m in img_metas(2)]
    )
    assert_detections(results, 3)

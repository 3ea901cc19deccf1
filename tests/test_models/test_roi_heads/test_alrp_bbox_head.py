"""aLRPBBoxHead alone and inside mmdet's StandardRoIHead, on generated RoIs and features."""

import math

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from alrp_core import alrp_loss
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_overlaps
from mmdet_alrp.models.roi_heads import aLRPBBoxHead

NUM_CLASSES = 3
CHANNELS = 8
IMG = 64
STDS = [0.1, 0.1, 0.2, 0.2]
KEYS = {'loss_cls', 'loss_bbox', 'alrp_cls', 'alrp_loc', 'sb_weight', 'num_pos'}
TEST_CFG = ConfigDict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=20)


def bbox_head_cfg(**kwargs) -> dict:
    return dict(
        type='aLRPBBoxHead',
        in_channels=CHANNELS,
        fc_out_channels=32,
        roi_feat_size=7,
        num_classes=NUM_CLASSES,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=STDS),
        **kwargs,
    )


def make_roi_head(neg_iou_thr: float = 0.5):
    train_cfg = ConfigDict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=neg_iou_thr,
            min_pos_iou=0.5,
            match_low_quality=False,
            ignore_iof_thr=-1,
        ),
        sampler=dict(type='PseudoSampler'),
        pos_weight=-1,
        debug=False,
    )
    return MODELS.build(
        dict(
            type='StandardRoIHead',
            bbox_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                out_channels=CHANNELS,
                featmap_strides=[4, 8],
            ),
            bbox_head=bbox_head_cfg(),
            train_cfg=train_cfg,
            test_cfg=TEST_CFG,
        )
    )


GT_BOXES = torch.tensor([[8.0, 8.0, 40.0, 40.0], [28.0, 20.0, 60.0, 52.0]])
GT_LABELS = torch.tensor([0, 2])
# IoU with their gt box: 1, 30 / 34 (shifted by 2), 30 / 34; far-off boxes (IoU 0): negatives.
KEPT = torch.tensor(
    [
        [8.0, 8.0, 40.0, 40.0],
        [10.0, 8.0, 42.0, 40.0],
        [28.0, 22.0, 60.0, 54.0],
        [0.0, 50.0, 12.0, 62.0],
        [44.0, 0.0, 60.0, 14.0],
        [2.0, 2.0, 10.0, 6.0],
    ]
)
# IoU 18/46 ~ 0.39 with the first gt box (shift 14): ignored when neg_iou_thr = 0.3.
IGNORED = torch.tensor([[22.0, 8.0, 54.0, 40.0]])


def samples(boxes_per_img):
    result = []
    for boxes, labels in boxes_per_img:
        sample = DetDataSample(
            metainfo=dict(img_shape=(IMG, IMG), pad_shape=(IMG, IMG), scale_factor=(1.0, 1.0))
        )
        sample.gt_instances = InstanceData(bboxes=boxes, labels=labels)
        result.append(sample)
    return result


def features(num_imgs: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(num_imgs, CHANNELS, IMG // s, IMG // s, generator=gen) for s in (4, 8))


def proposals(boxes):
    return InstanceData(bboxes=boxes.clone(), scores=torch.ones(len(boxes)))


def test_layers_have_no_background_column():
    head = MODELS.build(bbox_head_cfg())
    assert isinstance(head, aLRPBBoxHead)
    assert head.fc_cls.out_features == NUM_CLASSES
    assert head.fc_reg.out_features == 4 * NUM_CLASSES
    cls_score, bbox_pred = head(torch.randn(5, CHANNELS, 7, 7))
    assert cls_score.shape == (5, NUM_CLASSES) and bbox_pred.shape == (5, 4 * NUM_CLASSES)
    with pytest.raises(ValueError, match='aLRPLoss'):
        MODELS.build(bbox_head_cfg(loss_cls=dict(type='CrossEntropyLoss')))
    with pytest.raises(ValueError, match='reg_decoded_bbox'):
        MODELS.build(bbox_head_cfg(reg_decoded_bbox=False))


@pytest.mark.parametrize('class_agnostic', [False, True])
def test_hand_made_positive_error(class_agnostic):
    # RoI 1 is the one positive, of class 2, its RoI on its gt box. The class-2 deltas
    # (1, 0, log(1.2) / 0.2, 0) times the stds (0.1, 0.1, 0.2, 0.2) move the centre x from 32
    # to 35.2 and scale the width to 38.4: box (16, 16, 54.4, 48), GIoU 32 / 38.4 with the gt.
    # Ranked above everything (FP = 0, rank = 1), L_loc is its error (tau = 0.5).
    head = MODELS.build(bbox_head_cfg(reg_class_agnostic=class_agnostic))
    rois = torch.tensor(
        [[0.0, 0.0, 0.0, 10.0, 10.0], [0.0, 16.0, 16.0, 48.0, 48.0], [1.0, 30.0, 30.0, 50.0, 50.0]]
    )
    labels = torch.tensor([NUM_CLASSES, 2, NUM_CLASSES])
    cls_score = torch.full((3, NUM_CLASSES), -10.0)
    cls_score[1, 2] = 10.0
    delta = torch.tensor([1.0, 0.0, math.log(1.2) / 0.2, 0.0])
    if class_agnostic:
        bbox_pred = delta.repeat(3, 1)
    else:
        bbox_pred = torch.full((3, NUM_CLASSES, 4), 3.0)  # other classes' deltas: far off
        bbox_pred[1, 2] = delta
        bbox_pred = bbox_pred.view(3, -1)
    bbox_targets = torch.zeros(3, 4)
    bbox_targets[1] = torch.tensor([16.0, 16.0, 48.0, 48.0])
    losses = head.loss(
        cls_score, bbox_pred, rois, labels, torch.ones(3), bbox_targets, torch.zeros(3, 4)
    )
    giou = bbox_overlaps(
        torch.tensor([[16.0, 16.0, 54.4, 48.0]]), bbox_targets[1:2], mode='giou', is_aligned=True
    ).item()
    assert giou == pytest.approx(32 / 38.4)
    assert set(losses) == KEYS
    assert losses['alrp_loc'].item() == pytest.approx((1 - giou) / (2 * 0.5), rel=1e-5)
    assert losses['alrp_cls'].item() == 0 and losses['num_pos'].item() == 1


def test_loss_matches_independent_targets_and_gradient():
    torch.manual_seed(0)
    head = MODELS.build(bbox_head_cfg())
    num_rois = 12
    rois = torch.cat(
        [torch.zeros(num_rois, 1), torch.rand(num_rois, 2) * 20, 20 + torch.rand(num_rois, 2) * 20],
        1,
    )
    labels = torch.tensor([0, 3, 3, 2, 1, 3, 3, 3, 2, 3, 3, 3])
    bbox_targets = rois[:, 1:] + torch.randn(num_rois, 4)
    cls_score = torch.randn(num_rois, NUM_CLASSES, requires_grad=True)
    bbox_pred = torch.randn(num_rois, 4 * NUM_CLASSES) * 0.5
    losses = head.loss(
        cls_score,
        bbox_pred,
        rois,
        labels,
        torch.ones(num_rois),
        bbox_targets,
        torch.zeros(num_rois, 4),
    )
    losses['loss_cls'].backward()

    targets = torch.zeros(num_rois, NUM_CLASSES, dtype=torch.long)
    errors = []
    for r, c in enumerate(labels.tolist()):
        if c < NUM_CLASSES:
            targets[r, c] = 1
            pred = head.bbox_coder.decode(
                rois[r : r + 1, 1:], bbox_pred[r : r + 1, 4 * c : 4 * c + 4]
            )
            giou = bbox_overlaps(pred, bbox_targets[r : r + 1], mode='giou', is_aligned=True)
            errors.append((1 - giou) / (2 * 0.5))
    ref_logits = cls_score.detach().clone().requires_grad_(True)
    ref_cls, ref_loc = alrp_loss(ref_logits, targets, torch.cat(errors))
    ref_cls.backward()
    assert losses['alrp_cls'].item() == pytest.approx(ref_cls.item(), rel=1e-6)
    assert losses['alrp_loc'].item() == pytest.approx(ref_loc.item(), rel=1e-6)
    assert losses['num_pos'].item() == 4
    torch.testing.assert_close(cls_score.grad, ref_logits.grad)


def test_roi_head_loss_reaches_every_parameter():
    torch.manual_seed(0)
    roi_head = make_roi_head()
    x = features(2)
    rpn_results = [proposals(KEPT), proposals(KEPT[3:])]
    data = samples([(GT_BOXES, GT_LABELS), (GT_BOXES[1:], GT_LABELS[1:])])
    losses = roi_head.loss(x, rpn_results, data)
    assert set(losses) == KEYS
    assert losses['num_pos'].item() == 3
    assert all(torch.isfinite(v).all() for v in losses.values())
    (losses['loss_cls'] + losses['loss_bbox']).backward()
    for name, param in roi_head.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        if param.dim() > 1:
            assert param.grad.abs().sum() > 0, name


def test_ignored_proposals_take_no_part():
    # StandardRoIHead forwards only the sampler's positives and negatives: proposals in the
    # assigner's ignore band change nothing (as target -1 would) and get no RoI at all.
    torch.manual_seed(0)
    roi_head = make_roi_head(neg_iou_thr=0.3)
    x = features(1)
    data = samples([(GT_BOXES, GT_LABELS)])
    base = roi_head.loss(x, [proposals(KEPT)], data)
    with_ignored = roi_head.loss(x, [proposals(torch.cat([IGNORED, KEPT, IGNORED]))], data)
    for key in ('alrp_cls', 'alrp_loc', 'num_pos'):
        assert with_ignored[key].item() == pytest.approx(base[key].item(), rel=1e-6), key
    # the same proposals, with the ignored box a negative, do change the loss
    roi_head.bbox_assigner.neg_iou_thr = 0.5
    as_negative = roi_head.loss(x, [proposals(torch.cat([IGNORED, KEPT, IGNORED]))], data)
    assert as_negative['alrp_cls'].item() != pytest.approx(base['alrp_cls'].item(), rel=1e-6)


def test_images_without_ground_truth():
    torch.manual_seed(0)
    roi_head = make_roi_head()
    x = features(2)
    no_gt = (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    mixed = roi_head.loss(
        x, [proposals(KEPT), proposals(KEPT)], samples([(GT_BOXES, GT_LABELS), no_gt])
    )
    assert all(torch.isfinite(v).all() for v in mixed.values())
    assert mixed['num_pos'].item() == 3
    empty = roi_head.loss(x, [proposals(KEPT), proposals(KEPT)], samples([no_gt, no_gt]))
    assert empty['loss_cls'].item() == 0 and empty['loss_bbox'].item() == 0
    (empty['loss_cls'] + empty['loss_bbox']).backward()


def test_predict_with_sigmoid_scores():
    torch.manual_seed(0)
    head = MODELS.build(bbox_head_cfg())
    num_rois = 30
    rois = torch.cat(
        [torch.zeros(num_rois, 1), torch.rand(num_rois, 2) * 30, 30 + torch.rand(num_rois, 2) * 30],
        1,
    )
    cls_score = torch.randn(num_rois, NUM_CLASSES) * 3
    bbox_pred = torch.randn(num_rois, 4 * NUM_CLASSES) * 0.1
    meta = dict(img_shape=(IMG, IMG), scale_factor=(2.0, 2.0))

    raw = head.predict_by_feat((rois,), (cls_score,), (bbox_pred,), [meta], rcnn_test_cfg=None)[0]
    torch.testing.assert_close(raw.scores, cls_score.sigmoid())
    assert raw.bboxes.shape == (num_rois, 4 * NUM_CLASSES)

    result = head.predict_by_feat(
        (rois,), (cls_score,), (bbox_pred,), [meta], rcnn_test_cfg=TEST_CFG
    )[0]
    num = len(result)
    assert 0 < num <= 20
    assert result.bboxes.shape == (num, 4) and result.scores.shape == (num,)
    assert result.labels.shape == (num,)
    assert ((result.scores >= 0.05) & (result.scores <= 1)).all()
    assert ((result.labels >= 0) & (result.labels < NUM_CLASSES)).all()
    # NMS keeps the best (RoI, class) pair: its sigmoid score, label and decoded box
    best = cls_score.sigmoid().flatten().argmax()
    roi, cls = divmod(best.item(), NUM_CLASSES)
    assert result.scores[0].item() == pytest.approx(cls_score[roi, cls].sigmoid().item())
    assert result.labels[0].item() == cls
    torch.testing.assert_close(result.bboxes[0], raw.bboxes[roi, 4 * cls : 4 * cls + 4])

    rescaled = head.predict_by_feat(
        (rois,), (cls_score,), (bbox_pred,), [meta], rcnn_test_cfg=TEST_CFG, rescale=True
    )[0]
    torch.testing.assert_close(rescaled.bboxes, result.bboxes / 2)


def test_roi_head_predict():
    torch.manual_seed(0)
    roi_head = make_roi_head()
    results = roi_head.predict(
        features(2),
        [proposals(KEPT), proposals(KEPT[:0])],
        samples([(GT_BOXES, GT_LABELS)] * 2),
        rescale=False,
    )
    assert len(results) == 2 and len(results[1]) == 0
    assert results[0].bboxes.shape == (len(results[0]), 4)
    assert ((results[0].scores >= 0) & (results[0].scores <= 1)).all()


def test_learns_to_rank_the_positives():
    torch.manual_seed(0)
    head = MODELS.build(bbox_head_cfg())
    gen = torch.Generator().manual_seed(1)
    num_rois = 64
    feats = torch.randn(num_rois, CHANNELS, 7, 7, generator=gen)
    rois = torch.cat(
        [
            torch.zeros(num_rois, 1),
            torch.rand(num_rois, 2, generator=gen) * 20,
            20 + torch.rand(num_rois, 2, generator=gen) * 20,
        ],
        1,
    )
    labels = torch.full((num_rois,), NUM_CLASSES)
    labels[:9] = torch.arange(9) % NUM_CLASSES
    bbox_targets = rois[:, 1:] + torch.randn(num_rois, 4, generator=gen)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.01)
    values = []
    for _ in range(30):
        losses = head.loss(
            *head(feats), rois, labels, torch.ones(num_rois), bbox_targets, torch.zeros(num_rois, 4)
        )
        values.append(losses['alrp_cls'].item())
        optimizer.zero_grad()
        (losses['loss_cls'] + losses['loss_bbox']).backward()
        optimizer.step()
    assert values[-1] < 0.5 * values[0]


@pytest.mark.parametrize('label', [-1, NUM_CLASSES])
def test_label_outside_classes_is_named(label):
    """-1 would become the last class, C background; both are refused naming the image."""
    torch.manual_seed(0)
    roi_head = make_roi_head()
    data = samples([(GT_BOXES, GT_LABELS), (GT_BOXES, torch.tensor([1, label]))])
    with pytest.raises(ValueError, match=rf'label {label} of image 1 of the batch lies outside'):
        roi_head.loss(features(2), [proposals(KEPT), proposals(KEPT)], data)

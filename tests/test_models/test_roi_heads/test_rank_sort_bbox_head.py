"""RankingBBoxHead with Rank & Sort Loss: its loss against the oracle on independent targets,
inside StandardRoIHead with a KeepAllSampler (every proposal and gt box kept), without ground
truth, with any number of classes, and prediction; KeepAllSampler alone."""

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.models.task_modules.assigners import AssignResult
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import DetDataSample
from mmdet_alrp.models.losses import RankSortLoss
from mmdet_alrp.models.roi_heads import RankingBBoxHead
from mmdet_alrp.models.task_modules import KeepAllSampler

from ..rs_loss_oracle import rs_module_oracle

CHANNELS = 8
IMG = 64
STDS = [0.1, 0.1, 0.2, 0.2]
RS_KEYS = {'loss_rank', 'loss_sort', 'loss_bbox', 'giou_error', 'sb_weight', 'mean_iou', 'num_pos'}
TEST_CFG = ConfigDict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=20)
GT_BOXES = torch.tensor([[8.0, 8.0, 40.0, 40.0], [28.0, 20.0, 60.0, 52.0]])
GT_LABELS = torch.tensor([0, 2])
PROPOSALS = torch.tensor(
    [
        [8.0, 8.0, 40.0, 40.0],
        [10.0, 8.0, 42.0, 40.0],
        [28.0, 22.0, 60.0, 54.0],
        [0.0, 50.0, 12.0, 62.0],
        [44.0, 0.0, 60.0, 14.0],
        [2.0, 2.0, 10.0, 6.0],
        [22.0, 8.0, 54.0, 40.0],  # IoU 0.39 with gt 0: a negative (neg_iou_thr 0.5)
    ]
)


def bbox_head_cfg(num_classes: int = 3, **kwargs) -> dict:
    return dict(
        type='RankingBBoxHead',
        in_channels=CHANNELS,
        fc_out_channels=32,
        roi_feat_size=7,
        num_classes=num_classes,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=STDS),
        loss_cls=dict(type='RankSortLoss'),
        init_cfg=None,
        **kwargs,
    )


def make_roi_head(num_classes: int = 3):
    train_cfg = ConfigDict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0.5,
            match_low_quality=False,
            ignore_iof_thr=-1,
        ),
        sampler=dict(type='KeepAllSampler', num=512, pos_fraction=0.25),  # keys ignored
        pos_weight=-1,
        debug=False,
    )
    torch.manual_seed(0)
    return MODELS.build(
        dict(
            type='StandardRoIHead',
            bbox_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                out_channels=CHANNELS,
                featmap_strides=[4, 8],
            ),
            bbox_head=bbox_head_cfg(num_classes),
            train_cfg=train_cfg,
            test_cfg=TEST_CFG,
        )
    )


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


@pytest.mark.parametrize('class_agnostic', [False, True])
def test_loss_matches_the_oracle_on_independent_targets(class_agnostic):
    torch.manual_seed(0)
    head = MODELS.build(bbox_head_cfg(reg_class_agnostic=class_agnostic))
    assert isinstance(head, RankingBBoxHead) and isinstance(head.loss_cls, RankSortLoss)
    assert head.fc_cls.out_features == 3
    num_rois = 12
    rois = torch.cat(
        [torch.zeros(num_rois, 1), torch.rand(num_rois, 2) * 20, 20 + torch.rand(num_rois, 2) * 20],
        1,
    )
    labels = torch.tensor([0, 3, 3, 2, 1, 3, 3, 3, 2, 3, 3, 3])
    bbox_targets = rois[:, 1:] + torch.randn(num_rois, 4)
    cls_score = torch.randn(num_rois, 3, requires_grad=True)
    width = 4 if class_agnostic else 12
    bbox_pred = (torch.randn(num_rois, width) * 0.5).requires_grad_()
    losses = head.loss(
        cls_score, bbox_pred, rois, labels, torch.ones(num_rois), bbox_targets, torch.zeros(12, 4)
    )
    assert set(losses) == RS_KEYS

    pos = (labels < 3).nonzero().flatten()
    onehot = torch.zeros(num_rois, 3, dtype=torch.long)
    onehot[pos, labels[pos]] = 1
    deltas = torch.stack(
        [
            bbox_pred[r, :4] if class_agnostic else bbox_pred[r, 4 * c : 4 * c + 4]
            for r, c in zip(pos.tolist(), labels[pos].tolist())
        ]
    )
    # DeltaXYWH decoding by hand (wh clipping not reached): centre + stds * d * size
    roi = rois[pos, 1:]
    size, centre = roi[:, 2:] - roi[:, :2], (roi[:, 2:] + roi[:, :2]) / 2
    std = torch.tensor(STDS)
    new_centre = centre + deltas[:, :2] * std[:2] * size
    new_size = size * (deltas[:, 2:] * std[2:]).exp()
    boxes = torch.cat([new_centre - new_size / 2, new_centre + new_size / 2], 1)
    expected = rs_module_oracle(cls_score, onehot, boxes, bbox_targets[pos])
    for key in ('loss_rank', 'loss_sort', 'loss_bbox'):
        torch.testing.assert_close(losses[key].double(), expected[key], rtol=1e-5, atol=1e-6)
    total = losses['loss_rank'] + losses['loss_sort'] + losses['loss_bbox']
    grad_scores, grad_pred = torch.autograd.grad(total, [cls_score, bbox_pred])
    oracle_scores = expected['grad_logits']
    (oracle_pred,) = torch.autograd.grad(expected['surrogate'], bbox_pred)
    torch.testing.assert_close(grad_scores.double(), oracle_scores, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(grad_pred, oracle_pred.float(), rtol=1e-4, atol=1e-6)


def test_roi_head_keeps_every_proposal_and_learns():
    roi_head = make_roi_head()
    seen = []
    roi_head.bbox_head.register_forward_hook(lambda m, a, out: seen.append(len(out[0])))
    x = features(2)
    rpn_results = [proposals(PROPOSALS), proposals(PROPOSALS[3:])]
    data = samples([(GT_BOXES, GT_LABELS), (GT_BOXES[1:], GT_LABELS[1:])])
    losses = roi_head.loss(x, rpn_results, data)
    assert seen == [len(PROPOSALS) + 2 + len(PROPOSALS) - 3 + 1]  # proposals and gt boxes
    assert set(losses) == RS_KEYS
    assert all(torch.isfinite(v).all() for v in losses.values())
    # positives: gt 0 (itself, proposals 0, 1), gt 1 (itself, proposal 2); image 1: its gt
    assert losses['num_pos'].item() == 6
    roi_head.zero_grad()
    (losses['loss_rank'] + losses['loss_sort'] + losses['loss_bbox']).backward()
    for name, param in roi_head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_roi_head_without_ground_truth():
    roi_head = make_roi_head()
    data = samples([(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))])
    losses = roi_head.loss(features(1), [proposals(PROPOSALS)], data)
    assert losses['num_pos'] == 0
    assert all(losses[k] == 0 for k in ('loss_rank', 'loss_sort', 'loss_bbox'))
    (losses['loss_rank'] + losses['loss_sort'] + losses['loss_bbox']).backward()
    assert all(p.grad is not None for p in roi_head.parameters())


@pytest.mark.parametrize('num_classes', [1, 5])
def test_any_number_of_classes_and_predict(num_classes):
    roi_head = make_roi_head(num_classes)
    data = samples([(GT_BOXES, torch.tensor([0, num_classes - 1]))])
    losses = roi_head.loss(features(1), [proposals(PROPOSALS)], data)
    assert losses['num_pos'].item() == 5 and torch.isfinite(losses['loss_rank'])
    roi_head.eval()
    with torch.no_grad():
        results = roi_head.predict(features(1), [proposals(PROPOSALS)], data, rescale=False)
    pred = results[0]
    assert pred.bboxes.shape == (len(pred), 4) and len(pred) <= 20
    assert ((pred.labels >= 0) & (pred.labels < num_classes)).all()
    assert ((pred.scores >= 0.05) & (pred.scores <= 1)).all()


def test_keep_all_sampler_keeps_every_assigned_proposal():
    """gt_inds: 1, 2 positives, 0 negatives, -1 ignored; the two gt boxes are added first."""
    sampler = TASK_UTILS.build(dict(type='KeepAllSampler', num=4, pos_fraction=0.25))
    assert isinstance(sampler, KeepAllSampler)
    gt_inds = torch.tensor([1, 0, 0, -1, 2, 0, 0, 1, 0, 0])
    assign = AssignResult(
        2, gt_inds.clone(), torch.rand(10), labels=torch.where(gt_inds > 0, 1, -1)
    )
    priors = torch.rand(10, 2).repeat(1, 2) * 10 + torch.tensor([0.0, 0.0, 5.0, 5.0])
    gts = InstanceData(bboxes=priors[[0, 4]] + 1, labels=torch.tensor([1, 1]))
    result = sampler.sample(assign, InstanceData(priors=priors), gts)
    assert result.pos_inds.tolist() == [0, 1, 2, 6, 9]  # 2 gt boxes, then proposals 0, 4, 7
    assert result.neg_inds.tolist() == [3, 4, 7, 8, 10, 11]
    assert len(result.pos_inds) + len(result.neg_inds) == 12 - 1  # all but the ignored one
    no_gt = KeepAllSampler(add_gt_as_proposals=False)
    assign = AssignResult(
        2, gt_inds.clone(), torch.rand(10), labels=torch.where(gt_inds > 0, 1, -1)
    )
    result = no_gt.sample(assign, InstanceData(priors=priors), gts)
    assert result.pos_inds.tolist() == [0, 4, 7] and result.neg_inds.tolist() == [1, 2, 5, 6, 8, 9]

"""Rank & Sort Loss on every dense head family by config (``loss_cls=dict(type='RankSortLoss')``):
RetinaNet, ATSS, FCOS, FoveaBox, RPN and PAA. The terms, a gradient to every parameter, images
without boxes, the classes, prediction, and what the head hands the loss (against the oracle)."""

import contextlib

import pytest
import torch
from mmengine.config import ConfigDict

from mmdet.registry import MODELS
from mmdet_alrp.models.dense_heads import RankingPAAHead
from mmdet_alrp.models.losses import RankSortLoss

from ..rs_loss_oracle import rs_module_oracle
from .head_utils import (
    ATSS_TRAIN_CFG,
    FOVEA_ARGS,
    GTS,
    IN_CHANNELS,
    MAX_IOU_TRAIN_CFG,
    TEST_CFG,
    assert_detections,
    assert_every_parameter_learns,
    assert_finite,
    empty_instances,
    feats,
    img_metas,
    instances,
    losses_of,
    strides_of,
    total,
)

RS = dict(type='RankSortLoss')
RS_KEYS = {'loss_rank', 'loss_sort', 'loss_bbox', 'giou_error', 'sb_weight', 'mean_iou', 'num_pos'}
GN = dict(type='GN', num_groups=4, requires_grad=True)
SMALL = dict(in_channels=IN_CHANNELS, feat_channels=8, stacked_convs=1, init_cfg=None)
RS_ANCHORS = dict(  # RS-ATSS's and RS-PAA's: 3 square anchors a location
    type='AnchorGenerator',
    ratios=[1.0],
    octave_base_scale=4,
    scales_per_octave=3,
    strides=[8, 16, 32, 64, 128],
)
RS_CODER = dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2])
PAA_TRAIN_CFG = dict(
    assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.1, neg_iou_thr=0.1, min_pos_iou=0),
    allowed_border=-1,
    pos_weight=-1,
    debug=False,
)
RPN_TRAIN_CFG = dict(
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
RPN_TEST_CFG = dict(nms_pre=200, max_per_img=50, nms=dict(type='nms', iou_threshold=0.7))

#: name -> the head's config (num_classes, train_cfg, test_cfg added by build_head)
HEADS = {
    'retina': dict(type='RankingRetinaHead', train_cfg=MAX_IOU_TRAIN_CFG, **SMALL),
    'atss': dict(
        type='RankingATSSHead',
        norm_cfg=GN,
        anchor_generator=RS_ANCHORS,
        bbox_coder=RS_CODER,
        train_cfg=ATSS_TRAIN_CFG,
        **SMALL,
    ),
    'fcos': dict(
        type='RankingFCOSHead',
        norm_cfg=None,
        strides=[8, 16, 32, 64, 128],
        regress_ranges=((-1, 32), (32, 64), (64, 128), (128, 256), (256, 1e8)),
        norm_on_bbox=True,
        center_sampling=True,
        **SMALL,
    ),
    'fovea': dict(type='RankingFoveaHead', **FOVEA_ARGS, **SMALL),
    'paa': dict(
        type='RankingPAAHead',
        norm_cfg=GN,
        anchor_generator=RS_ANCHORS,
        bbox_coder=RS_CODER,
        train_cfg=PAA_TRAIN_CFG,
        **SMALL,
    ),
}


def build_head(name: str, num_classes: int = 3, loss_cls: dict = RS) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = dict(HEADS[name], num_classes=num_classes, loss_cls=loss_cls)
    cfg['train_cfg'] = ConfigDict(cfg.get('train_cfg', {}))
    return MODELS.build(dict(cfg, test_cfg=ConfigDict(TEST_CFG)))


def build_rpn(loss_cls: dict = dict(RS, loss_weight=0.2)) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS.build(
        dict(
            type='RankingRPNHead',
            in_channels=IN_CHANNELS,
            feat_channels=8,
            anchor_generator=dict(
                type='AnchorGenerator', scales=[4], ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32]
            ),
            bbox_coder=RS_CODER,
            loss_cls=loss_cls,
            train_cfg=ConfigDict(RPN_TRAIN_CFG),
            test_cfg=ConfigDict(RPN_TEST_CFG),
            init_cfg=None,
        )
    )


@contextlib.contextmanager
def recording_rank_sort_inputs(head: torch.nn.Module):
    """The inputs (logits, labels, pred boxes, target boxes) of every call of the head's
    RankSortLoss, detached, in the yielded list."""
    calls = []
    handle = head.loss_cls.register_forward_pre_hook(
        lambda _, args: calls.append([a.detach().clone() for a in args])
    )
    try:
        yield calls
    finally:
        handle.remove()


@pytest.mark.parametrize('name', sorted(HEADS))
def test_losses_match_the_oracle_and_reach_every_parameter(name):
    head = build_head(name)
    assert isinstance(head.loss_cls, RankSortLoss) and head.loss_bbox is None
    with recording_rank_sort_inputs(head) as calls:
        losses = losses_of(head, GTS)
    assert set(losses) == RS_KEYS
    assert_finite(losses)
    assert losses['num_pos'] > 0
    logits, labels, preds, targets = calls[0]
    assert logits.shape == labels.shape and logits.shape[1] == 3
    assert labels.eq(1).sum() == losses['num_pos'] == len(preds) == len(targets)
    assert (labels.eq(1).sum(1) <= 1).all()  # a positive prior has one class
    expected = rs_module_oracle(logits, labels, preds, targets)
    for key in ('loss_rank', 'loss_sort', 'loss_bbox'):
        torch.testing.assert_close(losses[key].double(), expected[key], rtol=1e-5, atol=1e-6)
    assert 0 < losses['loss_rank'] <= 1 and losses['mean_iou'] > 0
    assert_every_parameter_learns(head, total(losses), nonzero=False)
    # non-zero but on the scales of the levels without a positive (their boxes' only path)
    zero = [n for n, p in head.named_parameters() if p.grad.abs().sum() == 0]
    assert all(n.startswith('scales.') for n in zero), zero


@pytest.mark.parametrize('name', sorted(HEADS))
def test_images_without_ground_truth(name):
    head = build_head(name)
    losses = losses_of(head, [empty_instances(), empty_instances()])
    assert_finite(losses)
    assert losses['num_pos'] == 0
    assert all(losses[key] == 0 for key in ('loss_rank', 'loss_sort', 'loss_bbox'))
    assert_every_parameter_learns(head, total(losses), nonzero=False)
    losses = losses_of(head, [empty_instances(), GTS[0]])
    assert_finite(losses)
    assert losses['num_pos'] > 0


@pytest.mark.parametrize('num_classes', [1, 5])
@pytest.mark.parametrize('name', sorted(HEADS))
def test_any_number_of_classes_and_predict(name, num_classes):
    head = build_head(name, num_classes=num_classes)
    x = feats(strides_of(head), 2)
    assert head(x)[0][0].size(1) == head.num_base_priors * num_classes
    gt = [instances([[20.0, 30.0, 70.0, 90.0]], [num_classes - 1])] * 2
    with recording_rank_sort_inputs(head) as calls:
        losses = losses_of(head, gt)
    assert_finite(losses)
    labels = calls[0][1]
    assert labels.shape[1] == num_classes and (labels[:, -1] == 1).any()
    assert (labels[:, :-1] != 1).all()
    head.eval()
    with torch.no_grad():
        outputs = head(x)
        assert len(outputs) == 2  # no centerness / IoU branch
        results = head.predict_by_feat(*outputs, batch_img_metas=img_metas(2), rescale=True)
    assert len(results) == 2
    assert_detections(results, num_classes)
    assert all(((r.scores >= 0) & (r.scores <= 1)).all() for r in results)


def test_rpn_keys_weight_and_proposals():
    """The RPN's terms are RankSortLoss's with the RPN prefix, scaled by the head weight."""
    head = build_rpn()
    gts = [instances(gt.bboxes.tolist(), [0] * len(gt)) for gt in GTS]  # as TwoStageDetector
    with recording_rank_sort_inputs(head) as calls:
        losses = losses_of(head, gts)
    assert set(losses) == {
        'loss_rpn_rank',
        'loss_rpn_sort',
        'loss_rpn_bbox',
        'rpn_giou_error',
        'rpn_sb_weight',
        'rpn_mean_iou',
        'rpn_num_pos',
    }
    assert_finite(losses)
    logits, labels, preds, targets = calls[0]
    assert logits.shape[1] == 1 and (labels == -1).any()  # the assigner's ignore band
    expected = rs_module_oracle(logits, labels, preds, targets, loss_weight=0.2)
    for key in ('rank', 'sort', 'bbox'):
        torch.testing.assert_close(
            losses[f'loss_rpn_{key}'].double(), expected[f'loss_{key}'], rtol=1e-5, atol=1e-6
        )
    assert head.reg_decoded_bbox  # targets: the gt boxes themselves
    assert_every_parameter_learns(head, total(losses))
    head.eval()
    with torch.no_grad():
        proposals = head.predict_by_feat(
            *head(feats(strides_of(head), 2)), batch_img_metas=img_metas(2)
        )
    assert all(p.bboxes.shape == (len(p), 4) and len(p) <= 50 for p in proposals)


def test_rpn_without_ground_truth():
    head = build_rpn()
    losses = losses_of(head, [empty_instances()])
    assert losses['rpn_num_pos'] == 0 and losses['loss_rpn_rank'] == 0
    assert_every_parameter_learns(head, total(losses), nonzero=False)


def test_paa_assigns_by_focal_and_giou_scores():
    """The candidates' scores are Focal Loss (gamma 2, alpha 0.25) summed over the classes
    plus GIoU Loss (weights 1), by hand; the GMM then keeps a subset of the candidates."""
    head = build_head('paa')
    assert head.score_loss_cls.gamma == 2 and head.score_loss_cls.alpha == 0.25
    anchors = [torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 25.0, 25.0]])]
    logits = torch.tensor([[0.5, -1.0, 2.0], [-2.0, 0.0, 1.0]])
    deltas = torch.zeros(2, 4)
    label = torch.tensor([2, 0])
    target = torch.tensor([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 25.0, 25.0]])
    (scores,) = head.get_pos_loss(
        anchors,
        logits,
        deltas,
        label,
        torch.ones(2),
        target,
        torch.ones(2, 4),
        torch.tensor([0, 1]),
    )
    p = logits.sigmoid()
    onehot = torch.nn.functional.one_hot(label, 3).float()
    p_t = p * onehot + (1 - p) * (1 - onehot)
    alpha_t = 0.25 * onehot + 0.75 * (1 - onehot)
    focal = (-alpha_t * (1 - p_t) ** 2 * p_t.log()).sum(1)
    giou = torch.tensor([1 - 0.5, 0.0])  # anchor 0 is half of its target; anchor 1 exact
    torch.testing.assert_close(scores, focal + giou, rtol=1e-5, atol=1e-6)


def test_paa_takes_decoded_losses_only():
    with pytest.raises(ValueError, match='RankSortLoss'):
        build_head('paa', loss_cls=dict(type='APLoss'))
    with pytest.raises(ValueError, match='reg_decoded_bbox must be True'):
        MODELS.build(dict(HEADS['paa'], num_classes=3, reg_decoded_bbox=False))
    assert isinstance(build_head('paa', loss_cls=dict(type='aLRPLoss')), RankingPAAHead)
    assert_finite(losses_of(build_head('paa', loss_cls=dict(type='aLRPLoss')), GTS))


@pytest.mark.parametrize('name', ['retina', 'fcos'])
def test_rank_sort_heads_under_autocast(name):
    """bfloat16 outputs under autocast: the boxes are decoded and the loss computed in
    float32, and the values stay those of the float32 logits within bfloat16's rounding."""
    head = build_head(name)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        cls_scores, bbox_preds = head(feats(strides_of(head)))
        assert cls_scores[0].dtype == torch.bfloat16
        with recording_rank_sort_inputs(head) as calls:
            losses = head.loss_by_feat(cls_scores, bbox_preds, GTS[:1], img_metas())
    assert_finite(losses)
    assert calls[0][2].dtype == torch.float32
    for key in ('loss_rank', 'loss_sort', 'loss_bbox'):
        assert losses[key].dtype == torch.float32
    expected = rs_module_oracle(calls[0][0].float(), *calls[0][1:])
    torch.testing.assert_close(
        losses['loss_rank'].double(), expected['loss_rank'], rtol=1e-4, atol=1e-5
    )
    total(losses).backward()

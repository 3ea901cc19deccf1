"""The mistakes of a user who copies our configs get an error (or a warning) that names the
thing and the fix: a ranking loss on a head that cannot feed it, a loss_bbox a ranking head
does not use, aLRP without SelfBalanceHook, ground truth that no RoI matches, a second
differentiation, hyperparameters of the wrong type, diverged regression outputs, --cfg-options
without =."""

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData
from torch import nn

from alrp_core import alrp_loss, ap_loss, rs_loss
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet_alrp.engine.hooks import SelfBalanceHook
from mmdet_alrp.models.losses import APLoss, RankSortLoss, SelfBalance, aLRPLoss, giou_loc_error
from tests.tool_loader import load_tool

CONFIGS = Path(__file__).parents[2] / 'configs' / 'alrp_loss'

ANCHOR_HEAD = dict(
    num_classes=3,
    in_channels=8,
    feat_channels=8,
    stacked_convs=1,
    anchor_generator=dict(
        type='AnchorGenerator',
        octave_base_scale=4,
        scales_per_octave=1,
        ratios=[1.0],
        strides=[8],
    ),
    bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
    init_cfg=None,
)
POINT_HEAD = dict(
    num_classes=3,
    in_channels=8,
    feat_channels=8,
    stacked_convs=1,
    strides=[8],
    norm_cfg=None,
    init_cfg=None,
)
RCNN_HEAD = dict(
    in_channels=8,
    fc_out_channels=16,
    roi_feat_size=7,
    num_classes=3,
    init_cfg=None,
    bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
)


def cascade_roi_head(bbox_head: dict) -> dict:
    return dict(
        type='CascadeRoIHead',
        num_stages=2,
        stage_loss_weights=[1, 0.5],
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=8,
            featmap_strides=[8],
        ),
        bbox_head=[bbox_head, bbox_head],
    )


PLAIN_HEADS = {
    'RetinaHead': dict(type='RetinaHead', **ANCHOR_HEAD),
    'FCOSHead': dict(type='FCOSHead', **POINT_HEAD),
    'GFLHead': dict(
        type='GFLHead',
        **dict(ANCHOR_HEAD, anchor_generator=dict(ANCHOR_HEAD['anchor_generator'])),
    ),
    'Shared2FCBBoxHead': dict(type='Shared2FCBBoxHead', **RCNN_HEAD),
}


@pytest.mark.parametrize('head', list(PLAIN_HEADS))
@pytest.mark.parametrize('loss', ['aLRPLoss', 'APLoss', 'RankSortLoss'])
def test_ranking_loss_on_a_plain_head_is_refused_when_built(head, loss):
    """Cause 1: refused by the registry before anything is built, naming the ranking heads that
    take the loss and the doc; for the Cascade R-CNN's box head too."""
    cfg = dict(PLAIN_HEADS[head], loss_cls=dict(type=loss))
    ranking_head = {
        'aLRPLoss': 'aLRPRetinaHead',
        'APLoss': 'APLossRetinaHead',
        'RankSortLoss': 'RankingRetinaHead',
    }[loss]
    pattern = rf'{loss} is a ranking loss and {head} cannot feed it.*{ranking_head}.*your_own_head'
    with pytest.raises(ValueError, match=pattern):
        MODELS.build(cascade_roi_head(cfg) if head == 'Shared2FCBBoxHead' else cfg)


@pytest.mark.parametrize(
    'call',
    [
        lambda loss: loss(
            torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), None, avg_factor=1.0
        ),
        lambda loss: loss(
            torch.zeros(4, 3), torch.zeros(4, 3), weight=torch.ones(4, 3), avg_factor=1.0
        ),
    ],
    ids=['retina-fcos-bbox', 'gfl'],
)
@pytest.mark.parametrize('loss_type', [aLRPLoss, APLoss, RankSortLoss])
def test_ranking_loss_called_per_prior_is_refused_at_first_call(call, loss_type):
    """Cause 1, a head built without the registry: mmdet's heads call their loss_cls with
    avg_factor (and weight); the first call names the problem instead of a TypeError."""
    with pytest.raises(ValueError, match=r'cannot feed it.*your_own_head\.md'):
        call(loss_type())


HEAD_CFGS = {
    'aLRPRetinaHead': dict(type='aLRPRetinaHead', **ANCHOR_HEAD),
    'aLRPATSSHead': dict(type='aLRPATSSHead', norm_cfg=None, **ANCHOR_HEAD),
    'aLRPFCOSHead': dict(type='aLRPFCOSHead', **POINT_HEAD),
    'APLossRetinaHead': dict(type='APLossRetinaHead', **ANCHOR_HEAD),
    'aLRPBBoxHead': dict(type='aLRPBBoxHead', **RCNN_HEAD),
    'RankingRetinaHead': dict(
        type='RankingRetinaHead', loss_cls=dict(type='RankSortLoss'), **ANCHOR_HEAD
    ),
    'RankingBBoxHead': dict(
        type='RankingBBoxHead', loss_cls=dict(type='RankSortLoss'), **RCNN_HEAD
    ),
}


@pytest.mark.parametrize('head', list(HEAD_CFGS))
def test_unused_loss_bbox_is_refused(head):
    """Cause 2: a GIoU loss of weight 2 on a ranking head would never be trained."""
    cfg = dict(HEAD_CFGS[head], loss_bbox=dict(type='GIoULoss', loss_weight=2.0))
    with pytest.raises(ValueError, match=rf'{head} does not use loss_bbox.*GIoULoss.*None'):
        MODELS.build(cfg)
    assert MODELS.build(dict(HEAD_CFGS[head], loss_bbox=None)).loss_bbox is None


def logged_warnings(function):
    logger = MMLogger.get_instance('test_user_mistakes')
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        function()
    finally:
        logger.removeHandler(handler)
    return [record.getMessage() for record in records]


def weigh_twice(sb):
    for _ in range(2):
        sb.weigh(torch.tensor(0.5), torch.tensor(0.1))


def test_self_balance_without_hook_warns_once_at_the_first_batch():
    """Cause 3: without SelfBalanceHook SB stays at 50 for ever; the first training batch says
    so, once, with the line to add."""
    messages = logged_warnings(lambda: weigh_twice(SelfBalance().train()))
    assert len(messages) == 1
    assert 'no SelfBalanceHook' in messages[0] and 'stays at 50' in messages[0]
    assert "custom_hooks=[dict(type='SelfBalanceHook')]" in messages[0]


def test_self_balance_with_hook_does_not_warn():
    model = torch.nn.Sequential(SelfBalance()).train()
    SelfBalanceHook().before_train(SimpleNamespace(model=model))
    assert logged_warnings(lambda: weigh_twice(model[0])) == []


def ranking_losses(weight):
    logits = torch.linspace(-2, 2, 60).reshape(20, 3) * weight
    labels = torch.zeros(20, 3, dtype=torch.int8)
    labels[[1, 5, 9, 13], [0, 1, 2, 0]] = 1
    errors = torch.tensor([0.1, 0.3, 0.2, 0.5]) * weight
    ious = 1 - errors
    return {
        'ap': ap_loss(logits, labels),
        'alrp': sum(alrp_loss(logits, labels, errors)),
        'rs': sum(rs_loss(logits, labels, ious)),
    }


@pytest.mark.parametrize('name', ['ap', 'alrp', 'rs'])
def test_second_differentiation_is_refused(name):
    """Cause 5: the first-order gradient with create_graph=True keeps its value; a gradient
    penalty through it raises instead of adding nothing."""
    weight = torch.tensor(1.0, requires_grad=True)
    (grad,) = torch.autograd.grad(ranking_losses(weight)[name], weight, create_graph=True)
    first = torch.tensor(1.0, requires_grad=True)
    (plain,) = torch.autograd.grad(ranking_losses(first)[name], first)
    assert grad.requires_grad and torch.equal(grad.detach(), plain) and plain != 0
    with pytest.raises(RuntimeError, match='ranking loss .* has no second derivative'):
        grad.pow(2).backward()


BAD_VALUES = [('0.5', 'str'), (True, 'bool'), (None, 'NoneType')]


@pytest.mark.parametrize('value,type_name', BAD_VALUES)
@pytest.mark.parametrize(
    'build,name',
    [
        (lambda v: aLRPLoss(delta=v), 'delta'),
        (lambda v: aLRPLoss(eps=v), 'eps'),
        (lambda v: aLRPLoss(tau=v), 'tau'),
        (lambda v: aLRPLoss(loss_weight=v), 'loss_weight'),
        (lambda v: APLoss(delta=v), 'delta'),
        (lambda v: APLoss(loss_weight=v), 'loss_weight'),
        (lambda v: RankSortLoss(delta=v), 'delta'),
        (lambda v: RankSortLoss(eps=v), 'eps'),
        (lambda v: RankSortLoss(loss_weight=v), 'loss_weight'),
        (lambda v: SelfBalance(init_weight=v), 'init_weight'),
        (lambda v: SelfBalanceHook(period=v), 'period'),
    ],
)
def test_hyperparameters_are_numbers_only(build, name, value, type_name):
    """Cause 6: one rule for every loss and hook: a string (even '1'), a bool or None is
    refused when built, with the name of the argument."""
    if name == 'period' and value is None:
        pytest.skip('period=None is one epoch')
    with pytest.raises(ValueError, match=rf'^{name} must be a (real number|positive int)'):
        build(value)


def test_numeric_string_is_not_converted():
    with pytest.raises(ValueError, match=r"delta must be a real number, got '1' \(str\)"):
        aLRPLoss(delta='1')
    assert aLRPLoss(delta=1, tau=0, loss_weight=0).tau == 0.0


def test_diverged_regression_is_named_as_such():
    """Cause 6: outputs of 1e30 are finite; their GIoU overflows float32, which is reported as
    diverged regression, not as NaN or Inf in loc_errors."""
    target = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    pred = torch.tensor([[-1e30, -1e30, 1e30, 1e30]])
    with pytest.raises(ValueError, match=r'overflows float32 \(largest \|coordinate\| 1e\+30\)'):
        giou_loc_error(pred, target, 0.5)
    with pytest.raises(ValueError, match='NaN or Inf in pred_boxes'):
        giou_loc_error(pred * float('inf'), target, 0.5)


def test_cfg_options_without_equals_is_an_argparse_error(capsys):
    """Cause 6: ``--cfg-options foo`` names the item and the form, through argparse (exit 2)."""
    train = load_tool('train')
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(['config.py', '--cfg-options', 'a=1', 'foo'])
    assert exit_info.value.code == 2
    assert "--cfg-options: expects KEY=VALUE pairs, got 'foo'" in capsys.readouterr().err
    args = train.parse_args(['config.py', '--cfg-options', 'a=1'])
    assert args.cfg_options == {'a': 1}


def test_config_dict_values_also_go_through_the_rule():
    with pytest.raises(ValueError, match='tau must be a real number'):
        MODELS.build(ConfigDict(type='aLRPLoss', tau='0.5'))


# Cause 4: ground truth that no RoI matches, in the R-CNNs of our configs (ResNet-18, 16
# channels, 3 classes, no pretrained weights). The bad box is 4 px wide: no proposal (from
# anchors of 32 px and more) overlaps it with IoU >= 0.5, so no RoI of any stage matches it.
R_CNN_CONFIGS = {
    'faster': 'alrp-loss_faster-rcnn_r50_fpn_4xb8-100e_coco-500.py',
    'cascade': 'alrp-loss_cascade-rcnn_r50_fpn_4xb8-100e_coco-500.py',
}
UNMATCHED_BOX = [116.0, 4.0, 120.0, 8.0]


def small_r_cnn(name: str, plain_rpn: bool = False):
    """Our config's (Cascade) R-CNN, small; ``plain_rpn``: mmdet's RPNHead instead of ours."""
    model = Config.fromfile(str(CONFIGS / R_CNN_CONFIGS[name])).model
    model.backbone.update(depth=18, init_cfg=None)
    model.neck.update(in_channels=[64, 128, 256, 512], out_channels=16)
    model.rpn_head.update(in_channels=16, feat_channels=16, init_cfg=None)
    if plain_rpn:
        model.rpn_head = dict(
            type='RPNHead',
            in_channels=16,
            feat_channels=16,
            anchor_generator=model.rpn_head.anchor_generator,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True),
            loss_bbox=dict(type='L1Loss'),
        )
    model.roi_head.bbox_roi_extractor.out_channels = 16
    heads = model.roi_head.bbox_head
    for head in heads if isinstance(heads, list) else [heads]:
        head.update(in_channels=16, fc_out_channels=32, num_classes=3, init_cfg=None)
    for proposal_cfg in (model.train_cfg.rpn_proposal, model.test_cfg.rpn):
        proposal_cfg.update(nms_pre=300, max_per_img=100)
    torch.manual_seed(0)
    return MODELS.build(model)


def batch_with(detector, label: int, box: list):
    """Two 128 px images, each with a box that proposals match; image 1 also has ``box``
    labelled ``label``."""
    packed = demo_mm_inputs(2, [[3, 128, 128], [3, 128, 128]], num_items=[1, 1], num_classes=3)
    gt = [([[20.0, 30.0, 70.0, 90.0]], [0]), ([[10.0, 40.0, 100.0, 120.0], box], [1, label])]
    for sample, (boxes, labels) in zip(packed['data_samples'], gt):
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes), labels=torch.tensor(labels))
    return detector.data_preprocessor(packed, True)


def record_positive_gts(detector, monkeypatch) -> list:
    """Records, per call of a box head's loss_and_target, the gt indices of image 1's
    positive RoIs."""
    seen = []
    heads = detector.roi_head.bbox_head
    for head in heads if isinstance(heads, nn.ModuleList) else [heads]:

        def loss_and_target(original=head.loss_and_target, **kwargs):
            seen.append(set(kwargs['sampling_results'][1].pos_assigned_gt_inds.tolist()))
            return original(**kwargs)

        monkeypatch.setattr(head, 'loss_and_target', loss_and_target)
    return seen


@pytest.mark.parametrize('name', list(R_CNN_CONFIGS))
@pytest.mark.parametrize('label', [3, -1])
def test_unmatched_gt_label_out_of_range_is_named_on_the_first_batch(name, label, monkeypatch):
    """Cause 4: with a valid label the small box trains and no RoI of any stage matches it;
    with a label outside 0 .. 2 the first batch is refused, naming the label and the image."""
    detector = small_r_cnn(name)
    seen = record_positive_gts(detector, monkeypatch)
    losses = detector.forward(**batch_with(detector, 2, UNMATCHED_BOX), mode='loss')
    assert all(torch.isfinite(value).all() for value in losses.values())
    assert len(seen) == (3 if name == 'cascade' else 1)
    assert all(1 not in gts for gts in seen)

    pattern = rf'ground-truth label {label} of image 1 of the batch.* lies outside 0 \.\. 2'
    with pytest.raises(ValueError, match=pattern):
        detector.forward(**batch_with(detector, label, UNMATCHED_BOX), mode='loss')


@pytest.mark.parametrize('name', list(R_CNN_CONFIGS))
@pytest.mark.parametrize(
    'box, pattern',
    [
        ([120.0, 4.0, 116.0, 8.0], r'ground-truth box \[120\.0, 4\.0, 116\.0, 8\.0\].*x2 < x1'),
        ([116.0, 8.0, 120.0, 4.0], r'of image 1 of the batch.* has x2 < x1 or y2 < y1'),
        ([116.0, 4.0, float('nan'), 8.0], r'NaN or Inf in a ground-truth box of image 1'),
    ],
    ids=['x-inverted', 'y-inverted', 'nan'],
)
def test_unmatched_bad_gt_box_is_named_on_the_first_batch(name, box, pattern):
    """Cause 4: the RoI head checks the boxes itself, whatever the RPN (here mmdet's RPNHead,
    which does not check them)."""
    detector = small_r_cnn(name, plain_rpn=True)
    with pytest.raises(ValueError, match=pattern):
        detector.forward(**batch_with(detector, 2, box), mode='loss')

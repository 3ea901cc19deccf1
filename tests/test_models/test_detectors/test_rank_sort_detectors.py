"""The RS detectors of the Rank & Sort Loss paper, built from small configs (ResNet-18 of 8 base
channels, no pretrained weights) on mmdet's own model configs: RS Faster R-CNN, RS Cascade
R-CNN, RS-ATSS and RS-PAA. A training step on generated images, the loss keys, the RS heads,
every proposal kept by the R-CNN box heads, and prediction."""

import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet_alrp.models.dense_heads import RankingATSSHead, RankingPAAHead, RankingRPNHead
from mmdet_alrp.models.losses import RankSortLoss
from mmdet_alrp.models.roi_heads import RankingBBoxHead

RS = dict(type='RankSortLoss')
RS_KEYS = ('loss_rank', 'loss_sort', 'loss_bbox', 'giou_error', 'sb_weight', 'mean_iou', 'num_pos')
STDS = [0.1, 0.1, 0.2, 0.2]
KEEP_ALL = dict(type='KeepAllSampler', add_gt_as_proposals=True)
NUM_CLASSES = 4
RS_ANCHORS = dict(
    type='AnchorGenerator',
    ratios=[1.0],
    octave_base_scale=4,
    scales_per_octave=3,
    strides=[8, 16, 32, 64, 128],
)


def load(base: str, tmp_path) -> Config:
    path = tmp_path / 'base.py'
    path.write_text(f"_base_ = ['mmdet::{base}']\n")
    return Config.fromfile(str(path))


def small_backbone(model) -> None:
    """ResNet-18 of 8 base channels without pretrained weights, FPN of 16 channels."""
    model.backbone.update(depth=18, base_channels=8, init_cfg=None)
    model.neck.update(in_channels=[8, 16, 32, 64], out_channels=16)


def rs_rpn(model) -> None:
    """The RS RPN: RankingRPNHead with RankSortLoss of head weight 0.2, no sampling."""
    model.rpn_head.update(
        type='RankingRPNHead',
        in_channels=16,
        feat_channels=16,
        loss_cls=dict(RS, loss_weight=0.2),
        loss_bbox=None,
    )
    model.rpn_head.bbox_coder.target_stds = STDS
    model.train_cfg.rpn.sampler = dict(type='PseudoSampler')
    for proposal_cfg in (model.train_cfg.rpn_proposal, model.test_cfg.rpn):
        proposal_cfg.update(nms_pre=200, max_per_img=60)


def rs_bbox_head(head: dict, class_agnostic: bool) -> dict:
    return dict(
        head,
        type='RankingBBoxHead',
        in_channels=16,
        fc_out_channels=32,
        num_classes=NUM_CLASSES,
        reg_class_agnostic=class_agnostic,
        reg_decoded_bbox=True,
        loss_cls=RS,
        loss_bbox=None,
    )


def faster_rcnn(tmp_path):
    cfg = load('_base_/models/faster-rcnn_r50_fpn.py', tmp_path)
    model = cfg.model
    small_backbone(model)
    rs_rpn(model)
    model.roi_head.bbox_roi_extractor.out_channels = 16
    model.roi_head.bbox_head = rs_bbox_head(model.roi_head.bbox_head, False)
    model.roi_head.bbox_head.bbox_coder.target_stds = STDS
    model.train_cfg.rcnn.sampler = KEEP_ALL
    return model


def cascade_rcnn(tmp_path):
    cfg = load('_base_/models/cascade-rcnn_r50_fpn.py', tmp_path)
    model = cfg.model
    small_backbone(model)
    rs_rpn(model)
    model.roi_head.stage_loss_weights = [1, 1, 1]
    model.roi_head.bbox_roi_extractor.out_channels = 16
    model.roi_head.bbox_head = [rs_bbox_head(h, True) for h in model.roi_head.bbox_head]
    for stage in model.train_cfg.rcnn:
        stage.sampler = KEEP_ALL
    return model


def rs_atss(tmp_path):
    model = load('atss/atss_r50_fpn_1x_coco.py', tmp_path).model
    small_backbone(model)
    model.bbox_head = dict(
        type='RankingATSSHead',
        num_classes=NUM_CLASSES,
        in_channels=16,
        feat_channels=16,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        anchor_generator=RS_ANCHORS,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=STDS),
        loss_cls=RS,
    )
    return model


def rs_paa(tmp_path):
    model = load('paa/paa_r50_fpn_1x_coco.py', tmp_path).model
    small_backbone(model)
    model.bbox_head = dict(
        type='RankingPAAHead',
        num_classes=NUM_CLASSES,
        in_channels=16,
        feat_channels=16,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        anchor_generator=RS_ANCHORS,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=STDS),
        loss_cls=RS,
        score_voting=True,
        topk=9,
    )
    return model


def inputs(num_items=(3, 2)):
    return demo_mm_inputs(
        2, [[3, 128, 128], [3, 125, 130]], num_items=list(num_items), num_classes=NUM_CLASSES
    )


def train_step(detector) -> dict:
    optim_wrapper = OptimWrapper(torch.optim.SGD(detector.parameters(), lr=0.001))
    return detector.train_step(inputs(), optim_wrapper)


def losses_of(detector, num_items=(3, 2)) -> dict:
    packed = inputs(num_items)
    return detector.forward(**detector.data_preprocessor(packed, True), mode='loss')


def assert_predicts(detector) -> None:
    detector.eval()
    packed = inputs()
    with torch.no_grad():
        results = detector.forward(**detector.data_preprocessor(packed, False), mode='predict')
    assert len(results) == 2
    for result in results:
        pred = result.pred_instances
        assert pred.bboxes.shape == (len(pred), 4) and pred.labels.shape == (len(pred),)
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
        assert ((pred.labels >= 0) & (pred.labels < NUM_CLASSES)).all()


RPN_KEYS = {f'loss_rpn_{k[5:]}' if k.startswith('loss_') else f'rpn_{k}' for k in RS_KEYS}


def test_rs_faster_rcnn(tmp_path):
    torch.manual_seed(0)
    detector = MODELS.build(faster_rcnn(tmp_path))
    assert isinstance(detector.rpn_head, RankingRPNHead)
    assert isinstance(detector.rpn_head.loss_cls, RankSortLoss)
    assert detector.rpn_head.loss_cls.loss_weight == 0.2
    assert isinstance(detector.roi_head.bbox_head, RankingBBoxHead)
    assert detector.roi_head.bbox_head.fc_cls.out_features == NUM_CLASSES  # no background

    seen = []
    detector.roi_head.bbox_head.register_forward_hook(lambda m, a, out: seen.append(len(out[0])))
    losses = losses_of(detector)
    assert set(losses) == RPN_KEYS | set(RS_KEYS)
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert losses['rpn_num_pos'] > 0 and losses['num_pos'] > 0
    torch.testing.assert_close(
        losses['loss_bbox'], losses['loss_rank'] + losses['loss_sort'], rtol=1e-6, atol=1e-7
    )
    torch.testing.assert_close(
        losses['loss_rpn_bbox'],
        losses['loss_rpn_rank'] + losses['loss_rpn_sort'],
        rtol=1e-6,
        atol=1e-7,
    )
    # every proposal (60 an image at most) and the 5 gt boxes reach the box head
    assert 60 < seen[0] <= 2 * 60 + 5

    log_vars = train_step(detector)
    assert torch.isfinite(log_vars['loss'])
    assert_predicts(detector)


def test_rs_cascade_rcnn(tmp_path):
    torch.manual_seed(0)
    detector = MODELS.build(cascade_rcnn(tmp_path))
    heads = detector.roi_head.bbox_head
    assert len(heads) == 3 and all(isinstance(h, RankingBBoxHead) for h in heads)
    assert all(isinstance(h.loss_cls, RankSortLoss) for h in heads)
    losses = losses_of(detector)
    stage_keys = {f's{i}.{k}' for i in range(3) for k in RS_KEYS}
    assert set(losses) == RPN_KEYS | stage_keys
    assert all(torch.isfinite(v).all() for v in losses.values())
    for i in range(3):
        assert losses[f's{i}.num_pos'] > 0
        torch.testing.assert_close(
            losses[f's{i}.loss_bbox'],
            losses[f's{i}.loss_rank'] + losses[f's{i}.loss_sort'],
            rtol=1e-6,
            atol=1e-7,
        )
    log_vars = train_step(detector)
    assert torch.isfinite(log_vars['loss'])
    assert_predicts(detector)


@pytest.mark.parametrize(
    'build,head_type', [(rs_atss, RankingATSSHead), (rs_paa, RankingPAAHead)], ids=['atss', 'paa']
)
def test_rs_one_stage_detectors(tmp_path, build, head_type):
    torch.manual_seed(0)
    detector = MODELS.build(build(tmp_path))
    assert isinstance(detector.bbox_head, head_type)
    assert isinstance(detector.bbox_head.loss_cls, RankSortLoss)
    assert not hasattr(detector.bbox_head, 'atss_centerness')
    assert detector.bbox_head.num_base_priors == 3
    losses = losses_of(detector)
    assert set(losses) == set(RS_KEYS)
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert losses['num_pos'] > 0
    torch.testing.assert_close(
        losses['loss_bbox'], losses['loss_rank'] + losses['loss_sort'], rtol=1e-6, atol=1e-7
    )
    log_vars = train_step(detector)
    assert torch.isfinite(log_vars['loss'])
    assert_predicts(detector)


def test_empty_images_train(tmp_path):
    """A batch without any ground truth gives zero RS terms with zero gradients."""
    torch.manual_seed(0)
    model = faster_rcnn(tmp_path)
    detector = MODELS.build(copy.deepcopy(model))
    losses = losses_of(detector, num_items=(0, 0))
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert losses['rpn_num_pos'] == 0 and losses['loss_rpn_rank'] == 0
    assert losses['num_pos'] == 0 and losses['loss_rank'] == 0 and losses['loss_bbox'] == 0

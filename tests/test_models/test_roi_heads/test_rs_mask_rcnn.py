"""A tiny RS Mask R-CNN (RankingRPNHead, RankSortRoIHead with RankingBBoxHead and
RankingFCNMaskHead, all with RankSortLoss) on one generated shapes image: losses, prediction, and
a loss that falls."""

import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper

from mmdet.registry import DATASETS, MODELS
from mmdet.utils import register_all_modules
from mmdet_alrp.demo import CLASSES, generate_synthetic_shapes
from mmdet_alrp.models.losses import RankSortLoss
from mmdet_alrp.models.roi_heads import RankingFCNMaskHead, RankSortRoIHead

SIZE = 96


def tiny_mask_rcnn() -> dict:
    """ResNet-18 of 8 base channels, FPN P2-P5 of 16 channels, no pretrained weights."""
    extractor = dict(
        type='SingleRoIExtractor',
        roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
        out_channels=16,
        featmap_strides=[4, 8, 16, 32],
    )
    return dict(
        type='MaskRCNN',
        data_preprocessor=dict(
            type='DetDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_size_divisor=32,
            pad_mask=True,
        ),
        backbone=dict(
            type='ResNet',
            depth=18,
            base_channels=8,
            norm_eval=False,
            frozen_stages=-1,
            init_cfg=None,
        ),
        neck=dict(type='FPN', in_channels=[8, 16, 32, 64], out_channels=16, num_outs=4),
        rpn_head=dict(
            type='RankingRPNHead',
            in_channels=16,
            feat_channels=16,
            anchor_generator=dict(
                type='AnchorGenerator',
                octave_base_scale=2,
                scales_per_octave=3,
                ratios=[1.0],
                strides=[4, 8, 16, 32],
            ),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2]
            ),
            loss_cls=dict(type='RankSortLoss', loss_weight=0.2),
            loss_bbox=None,
            reg_decoded_bbox=True,
        ),
        roi_head=dict(
            type='RankSortRoIHead',
            bbox_roi_extractor=extractor,
            bbox_head=dict(
                type='RankingBBoxHead',
                in_channels=16,
                fc_out_channels=64,
                roi_feat_size=7,
                num_classes=len(CLASSES),
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0.0] * 4,
                    target_stds=[0.1, 0.1, 0.2, 0.2],
                ),
                loss_cls=dict(type='RankSortLoss'),
                loss_bbox=None,
                reg_decoded_bbox=True,
            ),
            mask_roi_extractor=dict(
                extractor, roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0)
            ),
            mask_head=dict(
                type='RankingFCNMaskHead',
                num_convs=2,
                in_channels=16,
                conv_out_channels=16,
                num_classes=len(CLASSES),
            ),
        ),
        train_cfg=dict(
            rpn=dict(
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
            ),
            rpn_proposal=dict(
                nms_pre=300,
                max_per_img=100,
                nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=0,
            ),
            rcnn=dict(
                assigner=dict(
                    type='MaxIoUAssigner',
                    pos_iou_thr=0.5,
                    neg_iou_thr=0.5,
                    min_pos_iou=0.5,
                    match_low_quality=True,
                    ignore_iof_thr=-1,
                ),
                sampler=dict(type='KeepAllSampler', add_gt_as_proposals=True),
                mask_size=28,
                pos_weight=-1,
                debug=False,
            ),
        ),
        test_cfg=dict(
            rpn=dict(
                nms_pre=300,
                max_per_img=100,
                nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=0,
            ),
            rcnn=dict(
                score_thr=0.0,
                nms=dict(type='nms', iou_threshold=0.5),
                max_per_img=20,
                mask_thr_binary=0.5,
            ),
        ),
    )


@pytest.fixture(scope='module')
def batch(tmp_path_factory):
    """One generated shapes image (5 shapes of 5 classes) with its boxes and masks, as mmdet's
    loaders pack it."""
    register_all_modules()
    paths = generate_synthetic_shapes(
        str(tmp_path_factory.mktemp('shapes')), num_train=1, num_val=0, image_size=SIZE, seed=7
    )
    dataset = DATASETS.build(
        dict(
            type='CocoDataset',
            data_root=paths['data_root'],
            metainfo=dict(classes=CLASSES),
            ann_file=paths['train_ann_file'],
            data_prefix=dict(img='train/'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                dict(type='Resize', scale=(SIZE, SIZE), keep_ratio=True),  # (sets scale_factor)
                dict(type='PackDetInputs'),
            ],
        )
    )
    assert len(dataset) == 1
    return pseudo_collate([dataset[0]])


def test_losses_and_predict(batch):
    torch.manual_seed(0)
    detector = MODELS.build(ConfigDict(tiny_mask_rcnn()))
    data = detector.data_preprocessor(batch, True)
    losses = detector.forward(**data, mode='loss')
    expected = {
        'loss_rpn_rank', 'loss_rpn_sort', 'loss_rpn_bbox',
        'loss_rank', 'loss_sort', 'loss_bbox',
        'loss_mask', 'dice_error', 'mask_sb_weight',
    }  # fmt: skip
    assert expected <= set(losses)
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert losses['loss_mask'].item() == pytest.approx(
        (losses['loss_rank'] + losses['loss_sort']).item(), rel=1e-6
    )
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for name, param in detector.named_parameters():
        assert param.grad is not None, name

    detector.eval()
    with torch.no_grad():
        (result,) = detector.forward(**detector.data_preprocessor(batch, False), mode='predict')
    pred = result.pred_instances
    n = len(pred)
    assert 0 < n <= 20
    assert pred.bboxes.shape == (n, 4) and pred.labels.shape == (n,)
    assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
    assert ((pred.labels >= 0) & (pred.labels < len(CLASSES))).all()
    assert pred.masks.shape == (n, SIZE, SIZE) and pred.masks.dtype == torch.bool


def test_loss_falls_on_one_image(batch):
    torch.manual_seed(0)
    detector = MODELS.build(ConfigDict(tiny_mask_rcnn()))
    optim_wrapper = OptimWrapper(
        torch.optim.SGD(detector.parameters(), lr=0.01, momentum=0.9), clip_grad=dict(max_norm=10)
    )
    ranking, dice = [], []
    for _ in range(25):
        log_vars = detector.train_step(batch, optim_wrapper)
        ranking.append((log_vars['loss_rank'] + log_vars['loss_sort']).item())
        dice.append(log_vars['dice_error'].item())
    assert all(map(torch.isfinite, map(torch.tensor, ranking + dice)))
    assert sum(ranking[-5:]) / 5 < 0.5 * ranking[0], ranking
    assert sum(dice[-5:]) / 5 < 0.8 * dice[0], dice


CONFIGS = Path(__file__).parents[3] / 'configs'
ROW_8 = 'rank_sort_loss/rank-sort-loss_mask-rcnn_r50_fpn_4xb4-1x_coco.py'
ROW_9 = 'rank_sort_loss/rank-sort-loss_mask-rcnn_r50_fpn-carafe_4xb4-1x_coco.py'


@pytest.mark.parametrize('name', [ROW_8, ROW_9])
def test_paper_configs_build_rs_mask_rcnn(name):
    cfg = Config.fromfile(str(CONFIGS / name))
    assert cfg.val_evaluator.type == 'CocoLRPMetric'
    assert cfg.val_evaluator.metric == ['bbox', 'segm']
    assert cfg.train_dataloader.batch_size == 4 and cfg.optim_wrapper.optimizer.lr == 0.012
    train_cfg, test_cfg = cfg.model.train_cfg, cfg.model.test_cfg
    assert train_cfg.rpn.sampler == dict(type='PseudoSampler')
    assert train_cfg.rcnn.sampler == dict(type='KeepAllSampler', add_gt_as_proposals=True)
    assert train_cfg.rcnn.assigner.match_low_quality and train_cfg.rcnn.mask_size == 28
    assert test_cfg.rcnn.score_thr == 0.4 and test_cfg.rcnn.mask_thr_binary == 0.5
    detector = MODELS.build(cfg.model)
    assert type(detector.neck).__name__ == ('FPN_CARAFE' if name == ROW_9 else 'FPN')
    assert isinstance(detector.rpn_head.loss_cls, RankSortLoss)
    assert detector.rpn_head.loss_cls.loss_weight == 0.2
    roi_head = detector.roi_head
    assert isinstance(roi_head, RankSortRoIHead) and roi_head.max_train_masks == 200
    assert isinstance(roi_head.bbox_head.loss_cls, RankSortLoss)
    assert roi_head.bbox_head.fc_cls.out_features == 80
    mask_head = roi_head.mask_head
    assert isinstance(mask_head, RankingFCNMaskHead)
    assert mask_head.conv_logits.out_channels == 80 and not mask_head.class_agnostic
    assert mask_head.loss_mask.eps == 5e-6 and not mask_head.loss_mask.naive_dice


def test_demo_config_trains_on_a_shapes_image(batch):
    cfg = Config.fromfile(str(CONFIGS / 'demo' / 'rank-sort-loss_mask-rcnn_r18-c16_shapes.py'))
    assert cfg.val_evaluator.metric == ['bbox', 'segm']
    torch.manual_seed(0)
    detector = MODELS.build(cfg.model)
    assert isinstance(detector.roi_head, RankSortRoIHead)
    assert detector.roi_head.mask_head.conv_logits.out_channels == len(CLASSES)
    optim_wrapper = OptimWrapper(torch.optim.SGD(detector.parameters(), lr=0.01))
    log_vars = detector.train_step(batch, optim_wrapper)
    assert all(torch.isfinite(v).all() for v in log_vars.values())
    assert {'loss_mask', 'dice_error', 'loss_rank', 'loss_rpn_rank'} <= set(log_vars)


#: LVIS v1's number of classes (the LVIS row's classifier and mask channels)
LVIS_CLASSES = 1203


def test_lvis_class_count_trains_a_step(batch):
    """With 1203 classes (the shapes relabelled to classes spread up to the last, 1202), a
    training step gives finite losses and a gradient to every parameter; the mask logits get a
    gradient in the channels of the ground-truth classes only (the Dice loss reads the channel
    of each positive's class), and prediction labels stay within the 1203 classes."""
    cfg = tiny_mask_rcnn()
    cfg['roi_head']['bbox_head']['num_classes'] = LVIS_CLASSES
    cfg['roi_head']['mask_head']['num_classes'] = LVIS_CLASSES
    torch.manual_seed(0)
    detector = MODELS.build(ConfigDict(cfg))
    head = detector.roi_head
    assert (head.bbox_head.fc_cls.out_features, head.bbox_head.fc_reg.out_features) == (
        LVIS_CLASSES,
        4 * LVIS_CLASSES,
    )
    assert head.mask_head.conv_logits.out_channels == LVIS_CLASSES

    relabelled = copy.deepcopy(batch)
    new_labels = torch.tensor([0, 300, 777, 1100, LVIS_CLASSES - 1])
    for sample in relabelled['data_samples']:
        sample.gt_instances.labels = new_labels[sample.gt_instances.labels]
    classes = set(relabelled['data_samples'][0].gt_instances.labels.tolist())
    data = detector.data_preprocessor(relabelled, True)
    losses = detector.forward(**data, mode='loss')
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert losses['loss_mask'].item() > 0
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for name, param in detector.named_parameters():
        assert param.grad is not None, name
    rows_with_grad = head.mask_head.conv_logits.weight.grad.flatten(1).abs().sum(1).nonzero()
    assert set(rows_with_grad.flatten().tolist()) == classes

    detector.eval()
    with torch.no_grad():
        (result,) = detector.forward(
            **detector.data_preprocessor(relabelled, False), mode='predict'
        )
    pred = result.pred_instances
    assert 0 < len(pred) <= 20
    assert ((pred.labels >= 0) & (pred.labels < LVIS_CLASSES)).all()
    assert pred.masks.shape == (len(pred), SIZE, SIZE)

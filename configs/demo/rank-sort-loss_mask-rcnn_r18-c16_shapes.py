# RS Loss Mask R-CNN on the synthetic shapes with their masks, for a CPU: the demo's backbone
# and neck (ResNet-18 with 16 base channels, FPN P2-P5 of 32 channels, as
# _base_/retinanet_r18-c16_shapes.py), anchors (3 square ones per location, 8 to 101 px on
# strides 4 to 32) and schedule (AdamW, lr 4e-3, warm-up then cosine; 12 epochs), with the
# data and box + mask metrics of _base_/shapes_instance.py, wired as the COCO config
# configs/rank_sort_loss/rank-sort-loss_mask-rcnn_r50_fpn_4xb4-1x_coco.py: Rank & Sort Loss in
# the RPN (head weight 0.2) and the R-CNN, no sampling, a score-weighted Dice mask loss
# balanced to the R-CNN's ranking loss; fully connected layers of 256 (1024 on COCO), mask
# head convolutions of 32 channels (256) and 300 proposals an image (1000) for the CPU.
# Every detection is kept (score threshold 0), as in the other demo configs.
# `make demo-segm` (tools/demo/demo.py --segm) trains and evaluates it; docs/demo.md has the run.
# Measured (`make demo-segm`, 2026-12-06, seed 0, one torch thread beside one loader worker of a
# quiet 2-core AMD EPYC VM): box AP 0.744, AP50 0.935, AP75 0.895, oLRP 0.354; mask AP 0.689,
# AP50 0.923, AP75 0.788, oLRP 0.399; 18.8 minutes in all (data, training, three evaluations,
# plots). A training step of 16 images takes 1.1 to 1.4 s on a
# quiet core; past the first epochs a batch has over 200 positive RoIs, so the mask cap draws.
_base_ = ['./_base_/shapes_instance.py', 'mmdet::_base_/default_runtime.py']

max_epochs = 12
val_interval = 4
base_lr = 0.004
num_classes = 5
strides = [4, 8, 16, 32]
target_stds = [0.1, 0.1, 0.2, 0.2]

roi_extractor = dict(
    type='SingleRoIExtractor',
    roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
    out_channels=32,
    featmap_strides=strides,
)
model = dict(
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
        base_channels=16,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None,
    ),
    neck=dict(type='FPN', in_channels=[16, 32, 64, 128], out_channels=32, num_outs=4),
    rpn_head=dict(
        type='RankingRPNHead',
        in_channels=32,
        feat_channels=32,
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=2,
            scales_per_octave=3,
            ratios=[1.0],
            strides=strides,
        ),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0], target_stds=target_stds
        ),
        reg_decoded_bbox=True,
        loss_cls=dict(type='RankSortLoss', loss_weight=0.2),
        loss_bbox=None,  # the ranking loss regresses
    ),
    roi_head=dict(
        type='RankSortRoIHead',
        max_train_masks=200,
        bbox_roi_extractor=roi_extractor,
        bbox_head=dict(
            type='RankingBBoxHead',
            in_channels=32,
            fc_out_channels=256,
            roi_feat_size=7,
            num_classes=num_classes,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0.0, 0.0, 0.0, 0.0],
                target_stds=target_stds,
            ),
            reg_class_agnostic=False,
            reg_decoded_bbox=True,
            loss_cls=dict(type='RankSortLoss'),
            loss_bbox=None,  # the ranking loss regresses
        ),
        mask_roi_extractor=dict(
            roi_extractor, roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0)
        ),
        mask_head=dict(
            type='RankingFCNMaskHead',
            num_convs=4,
            in_channels=32,
            conv_out_channels=32,
            num_classes=num_classes,
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
            nms_pre=1000, max_per_img=300, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0
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
            nms_pre=1000, max_per_img=300, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0
        ),
        rcnn=dict(
            score_thr=0.0,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=100,
            mask_thr_binary=0.5,
        ),
    ),
)

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=0.05),
    clip_grad=dict(max_norm=35, norm_type=2),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=200),
    dict(
        type='CosineAnnealingLR',
        by_epoch=True,
        begin=0,
        end=max_epochs,
        eta_min_ratio=0.01,
        convert_to_iter_based=True,
    ),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=val_interval, max_keep_ckpts=1),
)
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=True)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)

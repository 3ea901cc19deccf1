# RS-YOLACT R50-FPN (Oksuz et al., ICCV 2021): MMDetection's YOLACT (3 anchors a location, one
# shared head conv, 32 prototypes from P3) with one Rank & Sort Loss over the sigmoid class
# logits of every anchor of the batch, ranked and sorted by the IoU of the positives' boxes; the
# GIoU box loss and the Dice loss of the positives' masks are weighted by their detached scores
# and self-balanced every iteration to the ranking and sorting losses (RankingYOLACTHead,
# RankingYOLACTProtonet: every positive's mask, no semantic segmentation branch, no OHEM).
# 8 images a GPU (the paper's code does not state its GPU count; 1 x 8 here), 55 epochs, lr 0.006,
# linear warmup of 500 iterations from 0.1, cosine annealing to 0 by epoch. Paper: 29.9 mask AP,
# 33.8 box AP, 74.7 mask oLRP, 71.8 box oLRP (minival).
_base_ = 'mmdet::yolact/yolact_r50_1xb8-55e_coco.py'

# ../_base_/default_runtime.py's settings (that base and this one both build on mmdet's runtime,
# which mmengine refuses to inherit twice): our modules, a checkpoint every epoch, the last 3 kept
custom_imports = dict(imports=['mmdet_alrp'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))

model = dict(
    bbox_head=dict(
        type='RankingYOLACTHead',
        reg_decoded_bbox=True,
        use_ohem=False,  # every anchor enters the ranking
        loss_cls=dict(_delete_=True, type='RankSortLoss'),
        loss_bbox=None,  # the ranking loss regresses
    ),
    mask_head=dict(
        _delete_=True,
        type='RankingYOLACTProtonet',
        in_channels=256,
        num_protos=32,
        num_classes=80,
        max_masks_to_train=None,  # every positive's mask, as the paper's code trains them
        # 1 - 2 sum(p t) / (sum(p^2) + sum(t^2) + 1e-5): DiceLoss adds eps to both sums
        loss_mask=dict(
            type='DiceLoss', use_sigmoid=True, activate=False, naive_dice=False, eps=5e-6
        ),
    ),
    train_cfg=dict(
        _delete_=True,
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.4,
            min_pos_iou=0.0,
            ignore_iof_thr=-1,
            gt_max_assign_all=False,
        ),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False,
    ),
)

# The paper's augmentation order: photometric distortion before Expand and the crop.
train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(4.0, 4.0)),
    dict(
        type='PhotoMetricDistortion',
        brightness_delta=32,
        contrast_range=(0.5, 1.5),
        saturation_range=(0.5, 1.5),
        hue_delta=18,
    ),
    dict(type='Expand', mean=[123.68, 116.78, 103.94], to_rgb=True, ratio_range=(1, 4)),
    dict(type='MinIoURandomCrop', min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3),
    dict(type='Resize', scale=(550, 550), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
# 1 GPU x 8 images; batches of one orientation (of the images before resizing), as the paper's
# grouped sampler makes them
train_dataloader = dict(
    batch_size=8,
    batch_sampler=dict(_delete_=True, type='AspectRatioBatchSampler'),
    dataset=dict(pipeline=train_pipeline),
)

max_epochs = 55
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=500),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs,
        eta_min=0.0,
        by_epoch=True,
        begin=0,
        end=max_epochs,
    ),
]
optim_wrapper = dict(optimizer=dict(lr=0.006))
auto_scale_lr = dict(enable=False, base_batch_size=8)

# COCO AP and the optimal LRP (oLRP) of the boxes and of the masks
val_evaluator = dict(type='CocoLRPMetric')
test_evaluator = val_evaluator

# The CPU demo detector: a RetinaNet sized for a laptop, trained from scratch on the built-in
# synthetic-shapes dataset (mmdet_alrp.demo.synthetic_shapes, written by tools/demo/demo.py or
# tools/demo/make_demo_data.py to data/synthetic_shapes). The configs of configs/demo/ differ from
# this one only in the head's loss.
#
# Model: ResNet-18 with 16 base channels (a sixteenth of its usual compute), FPN P2-P5 with
# 32 channels, a head of 2 stacked convolutions. The shapes are about square and 6 to 100 px
# wide (three quarters of the val boxes under 32 x 32 px), so the anchors are square, 3 per
# position, 8 to 101 px on strides 4 to 32: any square box of 10 to 120 px, anywhere, has an
# anchor of IoU >= 0.48 (mmdet's RetinaNet: 32 to 813 px on strides 8 to 128, in 3 aspect
# ratios, sized for COCO at 800 px). The earlier P3-P6 of 64 channels (anchors 16 to 203 px)
# left 15.5% of the val boxes with no anchor of IoU >= 0.5 and ran 20% faster (2 threads,
# same machine state); P2-P5 at 32 channels gained 0.017 to 0.067 AP for each loss (two seeds
# each, same 24 epochs).
# Head: GroupNorm in its stacked convolutions (trains faster from scratch than without).
# Schedule: 24 epochs of AdamW (lr 4e-3, weight decay 0.05) with a linear warm-up then a cosine
# decay, gradient clipping, flips (horizontal, vertical, diagonal) and a light scale jitter;
# COCO AP (and oLRP, CocoLRPMetric) every 4 epochs. lr 4e-3 beat 2e-3 for each of the three
# losses, by 0.02 to 0.045 AP, on each of two seeds.
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py', 'mmdet::_base_/default_runtime.py']

custom_imports = dict(imports=['mmdet_alrp'], allow_failed_imports=False)

data_root = 'data/synthetic_shapes/'
metainfo = dict(
    classes=('disc', 'square', 'triangle', 'ring', 'cross'),
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (245, 130, 48), (145, 30, 180)],
)
image_size = 160
max_epochs = 24
val_interval = 4
base_lr = 0.004

model = dict(
    backbone=dict(depth=18, base_channels=16, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32, start_level=0, num_outs=4),
    bbox_head=dict(
        num_classes=5,
        in_channels=32,
        feat_channels=32,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        anchor_generator=dict(
            octave_base_scale=2, scales_per_octave=3, ratios=[1.0], strides=[4, 8, 16, 32]
        ),
    ),
    # Every detection is kept: AP and oLRP see all of them, and the demo draws each class above
    # its oLRP-optimal threshold.
    test_cfg=dict(score_thr=0.0),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='RandomResize',
        scale=(image_size, image_size),
        ratio_range=(0.8, 1.25),
        keep_ratio=True,
    ),
    dict(type='RandomCrop', crop_size=(image_size, image_size)),
    dict(
        type='RandomFlip', prob=[0.25, 0.25, 0.25], direction=['horizontal', 'vertical', 'diagonal']
    ),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'),
    ),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoLRPMetric', ann_file=data_root + 'annotations/instances_val.json', metric='bbox'
)
test_evaluator = val_evaluator

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

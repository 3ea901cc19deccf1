# RS Loss Mask R-CNN R101-FPN (Oksuz et al., ICCV 2021), trained at 6 scales: each image resized
# to fit (1333, s) keeping its ratio, s drawn from 800, 768, ..., 640. The R50 1x row's losses
# and test settings. 4 GPUs x 4 images, 36 epochs, lr 0.012, steps at 27 and 33. Paper: 40.3
# mask AP, 44.7 box AP, 66.9 mask oLRP, 63.7 box oLRP (minival).
_base_ = './rank-sort-loss_mask-rcnn_r50_fpn_4xb4-1x_coco.py'

model = dict(
    backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101'))
)

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, short_side) for short_side in range(800, 639, -32)],
        keep_ratio=True,
    ),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

train_cfg = dict(max_epochs=36)
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], end=36, milestones=[27, 33]),
]

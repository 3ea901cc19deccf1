# COCO 2017 with multi-scale training: each image resized to fit (1333, s) keeping its ratio,
# s drawn from 480, 560, ..., 960; testing at (1333, 800); 4 GPUs x 4 images; COCO AP and oLRP.
_base_ = './coco_detection_4xb4.py'

train_scales = [(1333, short_side) for short_side in range(480, 961, 80)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=train_scales, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# COCO 2017 at the aLRP Loss paper's 800 scale: the 500 recipe (coco_detection_ssd-aug-500.py)
# with 800 x 800 training images, testing at (1333, 800), 4 GPUs x 4 images.
_base_ = './coco_detection_ssd-aug-500.py'

train_pipeline = [
    dict(step, scale=(800, 800)) if step.type == 'Resize' else step
    for step in _base_.train_pipeline
]
test_pipeline = [
    dict(step, scale=(1333, 800)) if step.type == 'Resize' else step
    for step in _base_.test_pipeline
]

# 4 GPUs x 4 images: 16 images per iteration
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
auto_scale_lr = dict(enable=False, base_batch_size=16)

# Multi-scale and flip test (--tta): short sides 400 to 1200 in steps of 200, long side at most
# 5/3 of it, each unflipped and flipped (10 views).
tta_scales = [(667, 400), (1000, 600), (1333, 800), (1667, 1000), (2000, 1200)]
tta_pipeline = [
    _base_.tta_pipeline[0],
    dict(
        _base_.tta_pipeline[1],
        transforms=[
            [dict(type='Resize', scale=scale, keep_ratio=True) for scale in tta_scales],
            *_base_.tta_pipeline[1].transforms[1:],
        ],
    ),
]

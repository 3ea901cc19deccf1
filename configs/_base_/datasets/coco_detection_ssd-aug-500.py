# COCO 2017 at the aLRP Loss paper's 500 scale: SSD-style training augmentation on 512 x 512
# images, testing at (833, 500) keeping the aspect ratio, 4 GPUs x 8 images, COCO AP and oLRP.
_base_ = 'mmdet::_base_/datasets/coco_detection.py'

# The dataset mean in RGB order (R, G, B), the order of the model's data_preprocessor (which
# normalises after converting the loaded BGR images to RGB). The images are still BGR when
# Expand runs: to_rgb=True makes it reverse this mean to (B, G, R) to fill the canvas.
dataset_mean = [123.675, 116.28, 103.53]

# The paper's pipeline (mmdet 2.1). One step differs in code, not in any parameter: mmdet 3.3's
# PhotoMetricDistortion clips the saturation at 1 when it scales it up, the mmdet 2.x of the
# paper's time did not. Normalize and Pad are the model's data_preprocessor's in mmdet 3.
train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True, backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PhotoMetricDistortion',
        brightness_delta=32,
        contrast_range=(0.5, 1.5),
        saturation_range=(0.5, 1.5),
        hue_delta=18,
    ),
    dict(type='Expand', mean=dataset_mean, to_rgb=True, ratio_range=(1, 4)),
    dict(type='MinIoURandomCrop', min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3),
    dict(type='Resize', scale=(512, 512), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(833, 500), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'),
    ),
]

# 4 GPUs x 8 images: 32 images per iteration (--auto-scale-lr scales lr from this). Each batch
# holds images of one orientation (mmdet's AspectRatioBatchSampler, inherited), as the paper's
# mmdet 2.1 grouped them (DistributedGroupSampler; it put square images with the portrait ones,
# mmdet 3 puts them with the landscape ones).
train_dataloader = dict(batch_size=8, num_workers=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
auto_scale_lr = dict(enable=False, base_batch_size=32)

# COCO AP and the optimal LRP (oLRP) of the boxes
val_evaluator = dict(type='CocoLRPMetric')
test_evaluator = val_evaluator

# Multi-scale and flip test (tools/test.py --tta). The paper does not publish its scales: each
# image is seen at these (long side, short side) limits, keeping its ratio, unflipped and
# flipped, and the boxes of all views are merged by NMS.
tta_scales = [(500, 300), (667, 400), (833, 500), (1000, 600), (1167, 700)]
tta_model = dict(
    type='DetTTAModel', tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)
)
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=scale, keep_ratio=True) for scale in tta_scales],
            [dict(type='RandomFlip', prob=1.0), dict(type='RandomFlip', prob=0.0)],
            [dict(type='LoadAnnotations', with_bbox=True)],
            [
                dict(
                    type='PackDetInputs',
                    meta_keys=(
                        'img_id',
                        'img_path',
                        'ori_shape',
                        'img_shape',
                        'scale_factor',
                        'flip',
                        'flip_direction',
                    ),
                )
            ],
        ],
    ),
]

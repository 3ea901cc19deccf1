# The built-in synthetic-shapes dataset (mmdet_alrp.demo.synthetic_shapes, written by
# tools/demo.py or tools/make_demo_data.py to data/synthetic_shapes) for instance segmentation:
# the dataloaders and evaluators of a model config, as mmdet's _base_/datasets/coco_instance.py.
#
# Each annotation's mask is the shape's visible pixels (RLE, loaded as BitmapMasks); its box is
# the whole shape's extent, hidden pixels included, as in the detection demo. The augmentations
# are the detection demo's (configs/demo/_base_/retinanet_r18-c16_shapes.py): a light scale
# jitter, a crop back to the image size and flips (horizontal, vertical, diagonal), applied to
# boxes and masks alike. COCO AP and oLRP (CocoLRPMetric) of boxes and of masks.
custom_imports = dict(imports=['mmdet_alrp'], allow_failed_imports=False)

dataset_type = 'CocoDataset'
data_root = 'data/synthetic_shapes/'
metainfo = dict(
    classes=('disc', 'square', 'triangle', 'ring', 'cross'),
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (245, 130, 48), (145, 30, 180)],
)
image_size = 160

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
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
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
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
        type=dataset_type,
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
        type=dataset_type,
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
    type='CocoLRPMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric=['bbox', 'segm'],
)
test_evaluator = val_evaluator

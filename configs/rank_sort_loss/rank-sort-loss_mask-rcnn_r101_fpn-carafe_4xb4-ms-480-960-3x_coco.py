# RS Loss Mask R-CNN R101 with the CARAFE FPN (Oksuz et al., ICCV 2021), trained at 7 scales:
# each image resized to fit (1333, s) keeping its ratio, s drawn from 480, 560, ..., 960 (the
# R101 row without CARAFE trains at 640 to 800). Images padded to a multiple of 32; the mask
# head's upsampling stays a deconvolution, as in the RS configs. 4 GPUs x 4 images, 36 epochs,
# lr 0.012, steps at 27 and 33. Paper: 41.5 mask AP, 46.2 box AP, 65.9 mask oLRP, 62.6 box oLRP
# (minival).
_base_ = [
    './rank-sort-loss_mask-rcnn_r101_fpn_4xb4-ms-640-800-3x_coco.py',
    '../_base_/models/fpn-carafe.py',
]

model = dict(neck=dict(_delete_=True, **_base_.fpn_carafe))

train_pipeline = [
    *_base_.train_pipeline[:2],
    dict(
        type='RandomChoiceResize',
        scales=[(1333, short_side) for short_side in range(480, 961, 80)],
        keep_ratio=True,
    ),
    *_base_.train_pipeline[3:],
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# RS Loss Mask R-CNN ResNeXt-101 64x4d with modulated deformable convolutions (DCNv2, 4 offset
# groups) in stages c3-c5 and the CARAFE FPN (Oksuz et al., ICCV 2021), trained at 7 scales
# (short side 480 to 960). 4 GPUs x 4 images, 36 epochs, lr 0.012, steps at 27 and 33. Paper:
# 44.4 mask AP, 49.9 box AP, 63.1 mask oLRP, 59.1 box oLRP (minival); the paper has no log.
_base_ = './rank-sort-loss_mask-rcnn_r101-mdconv-group4-c3-c5_fpn-carafe_4xb4-ms-480-960-3x_coco.py'

model = dict(
    backbone=dict(
        type='ResNeXt',
        groups=64,
        base_width=4,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext101_64x4d'),
    )
)

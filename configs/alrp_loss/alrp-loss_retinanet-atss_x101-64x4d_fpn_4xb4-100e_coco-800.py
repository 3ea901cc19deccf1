# aLRP Loss RetinaNet X101-64x4d-FPN with ATSS, 800 scale: the R101 800 recipe with
# ResNeXt-101 (64 groups of width 4).
# Paper: 47.2 AP (minival), 47.8 AP (test-dev).
_base_ = './alrp-loss_retinanet-atss_r101_fpn_4xb4-100e_coco-800.py'

model = dict(
    backbone=dict(
        type='ResNeXt',
        groups=64,
        base_width=4,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext101_64x4d'),
    )
)

# aLRP Loss RetinaNet X101-64x4d-FPN with ATSS, 500 scale: the R50 recipe with ResNeXt-101
# (64 groups of width 4).
# Paper: 44.5 AP (minival), 44.6 AP (test-dev).
_base_ = './alrp-loss_retinanet-atss_r50_fpn_4xb8-100e_coco-500.py'

model = dict(
    backbone=dict(
        type='ResNeXt',
        depth=101,
        groups=64,
        base_width=4,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext101_64x4d'),
    )
)

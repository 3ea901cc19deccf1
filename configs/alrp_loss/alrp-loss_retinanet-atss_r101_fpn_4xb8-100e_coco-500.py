# aLRP Loss RetinaNet R101-FPN with ATSS, 500 scale: the R50 recipe with ResNet-101.
# Paper: 42.2 AP (minival), 42.8 AP (test-dev).
_base_ = './alrp-loss_retinanet-atss_r50_fpn_4xb8-100e_coco-500.py'

model = dict(
    backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101'))
)

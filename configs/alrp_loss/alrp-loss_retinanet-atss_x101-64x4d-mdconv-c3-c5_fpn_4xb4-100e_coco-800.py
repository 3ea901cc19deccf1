# aLRP Loss RetinaNet X101-64x4d-FPN with ATSS and modulated deformable convolutions (DCNv2) in
# stages c3-c5, 800 scale: the X101 800 recipe.
# Paper: 48.6 AP (minival), 48.9 AP (test-dev); with the multi-scale and flip test
# (tools/dist_test.sh ... --tta, scales in ../_base_/datasets/coco_detection_ssd-aug-800.py)
# 50.2 AP (test-dev).
_base_ = './alrp-loss_retinanet-atss_x101-64x4d_fpn_4xb4-100e_coco-800.py'

model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True),
    )
)

# RS Loss Mask R-CNN R101 with modulated deformable convolutions (DCNv2, 4 offset groups) in
# stages c3-c5 and the CARAFE FPN (Oksuz et al., ICCV 2021), trained at 7 scales (short side 480
# to 960). 4 GPUs x 4 images, 36 epochs, lr 0.012, steps at 27 and 33. Paper: 43.6 mask AP, 48.8
# box AP, 64.0 mask oLRP, 60.2 box oLRP (minival).
_base_ = './rank-sort-loss_mask-rcnn_r101_fpn-carafe_4xb4-ms-480-960-3x_coco.py'

model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deform_groups=4, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True),
    )
)

# RS Loss Faster R-CNN R101-FPN with modulated deformable convolutions (DCNv2, 4 offset groups)
# in stages c3-c5 (Oksuz et al., ICCV 2021), trained at 7 scales (short side 480 to 960).
# 4 GPUs x 4 images, 36 epochs, lr 0.012, steps at 27 and 33. Paper: 47.6 AP, 61.1 oLRP (minival).
_base_ = [
    '../_base_/models/rank-sort-loss_faster-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection_ms-480-960_4xb4.py',
    '../_base_/schedules/schedule_36e_step-27-33.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        depth=101,
        dcn=dict(type='DCNv2', deform_groups=4, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True),
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101'),
    )
)

optim_wrapper = dict(optimizer=dict(lr=0.012))

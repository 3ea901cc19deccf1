# aLRP Loss RetinaNet R101-FPN with ATSS, 800 scale: 3 anchors (3 scales, ratio 1); 4 GPUs x 4
# images, 100 epochs, lr 0.004, steps at 60 and 80 (the paper's config; its README's footnote
# says 75 and 95). SB is updated every epoch, where the paper's head updated it every 3665
# iterations, half an epoch at 16 images an iteration (see ../_base_/alrp_runtime.py).
# Paper: 45.4 AP (minival), 45.9 AP (test-dev).
_base_ = [
    '../_base_/models/alrp-loss_retinanet-atss_r50_fpn.py',
    '../_base_/datasets/coco_detection_ssd-aug-800.py',
    '../_base_/schedules/schedule_100e_step-60-80.py',
    '../_base_/alrp_runtime.py',
]

model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')
    ),
    bbox_head=dict(anchor_generator=dict(scales_per_octave=3)),
)

optim_wrapper = dict(optimizer=dict(lr=0.004))

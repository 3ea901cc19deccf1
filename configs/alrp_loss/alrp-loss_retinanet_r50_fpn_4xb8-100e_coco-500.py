# aLRP Loss RetinaNet R50-FPN, 500 scale: MaxIoU assigner, 6 anchors (2 scales x 3 ratios),
# GIoU-based localisation error; 4 GPUs x 8 images, 100 epochs, lr 0.008, steps at 60 and 80.
# Paper: 39.0 AP (minival), 39.5 AP (test-dev).
_base_ = [
    '../_base_/models/alrp-loss_retinanet_r50_fpn.py',
    '../_base_/datasets/coco_detection_ssd-aug-500.py',
    '../_base_/schedules/schedule_100e_step-60-80.py',
    '../_base_/alrp_runtime.py',
]

optim_wrapper = dict(optimizer=dict(lr=0.008))

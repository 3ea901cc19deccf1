# aLRP Loss RetinaNet R50-FPN with ATSS, 500 scale: 2 anchors (2 scales, ratio 1); 4 GPUs x 8
# images, 100 epochs, lr 0.008, steps at 75 and 95.
# Paper: 41.0 AP (minival), 41.3 AP (test-dev).
_base_ = [
    '../_base_/models/alrp-loss_retinanet-atss_r50_fpn.py',
    '../_base_/datasets/coco_detection_ssd-aug-500.py',
    '../_base_/schedules/schedule_100e_step-75-95.py',
    '../_base_/alrp_runtime.py',
]

optim_wrapper = dict(optimizer=dict(lr=0.008))

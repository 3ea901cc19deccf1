# Faster R-CNN R50-FPN with cross-entropy and L1 losses (MMDetection's), 500 scale (the aLRP
# Loss paper's baseline); 4 GPUs x 8 images, 100 epochs, lr 0.04, steps at 75 and 95.
# Paper: 37.8 AP, 69.3 oLRP (minival).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection_ssd-aug-500.py',
    '../_base_/schedules/schedule_100e_step-75-95.py',
    '../_base_/default_runtime.py',
]

optim_wrapper = dict(optimizer=dict(lr=0.04))

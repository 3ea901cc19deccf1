# FoveaBox R50-FPN with Focal Loss and Smooth L1, 500 scale (the aLRP Loss paper's baseline);
# 4 GPUs x 8 images, 100 epochs, lr 0.02, steps at 75 and 95.
# (The paper's config is named 4x4, but it trains 8 images a GPU, from its base data file.)
# Paper: 38.3 AP, 68.8 oLRP (minival).
_base_ = [
    '../_base_/models/fovea_r50_fpn.py',
    '../_base_/datasets/coco_detection_ssd-aug-500.py',
    '../_base_/schedules/schedule_100e_step-75-95.py',
    '../_base_/default_runtime.py',
]

optim_wrapper = dict(optimizer=dict(lr=0.02))

# AP Loss RetinaNet R50-FPN, 500 scale (the aLRP Loss paper's baseline): AP Loss for
# classification; Smooth L1 (beta 1.0) on the positives' deltas, encoded with stds
# (0.1, 0.1, 0.2, 0.2) and averaged over their 4 coordinates (APLoss); MaxIoU
# assigner, 6 anchors (2 scales x 3 ratios); 4 GPUs x 8 images, 100 epochs, lr 0.002, steps at
# 60 and 80.
# Paper: 35.4 AP (minival), 35.7 AP (test-dev).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/coco_detection_ssd-aug-500.py',
    '../_base_/schedules/schedule_100e_step-60-80.py',
    '../_base_/default_runtime.py',
]

model = dict(
    bbox_head=dict(
        type='APLossRetinaHead',
        loss_bbox=None,  # the ranking loss regresses
        anchor_generator=dict(octave_base_scale=4, scales_per_octave=2, ratios=[0.5, 1.0, 2.0]),
        bbox_coder=dict(target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_cls=dict(
            _delete_=True,
            type='APLoss',
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0),
        ),
    )
)

optim_wrapper = dict(optimizer=dict(lr=0.002))

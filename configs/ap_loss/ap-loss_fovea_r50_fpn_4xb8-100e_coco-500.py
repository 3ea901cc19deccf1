# AP Loss FoveaBox R50-FPN with Smooth L1 (beta 0.11, on FoveaBox's log-distance targets of the
# positives, averaged over their 4 coordinates: APLoss), 500 scale (the aLRP Loss
# paper's baseline); 4 GPUs x 8 images, 100 epochs, lr 0.002, steps at 75 and 95.
# (The paper's config is named 4x4, but it trains 8 images a GPU, from its base data file.)
# Paper: 36.5 AP, 69.8 oLRP (minival).
_base_ = [
    '../_base_/models/fovea_r50_fpn.py',
    '../_base_/datasets/coco_detection_ssd-aug-500.py',
    '../_base_/schedules/schedule_100e_step-75-95.py',
    '../_base_/default_runtime.py',
]

model = dict(
    bbox_head=dict(
        type='APLossFoveaHead',
        loss_bbox=None,  # the ranking loss regresses
        loss_cls=dict(
            _delete_=True,
            type='APLoss',
            loss_bbox=dict(type='SmoothL1Loss', beta=0.11, loss_weight=1.0),
        ),
    )
)

optim_wrapper = dict(optimizer=dict(lr=0.002))

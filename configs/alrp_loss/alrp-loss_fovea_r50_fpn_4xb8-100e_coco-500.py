# aLRP Loss FoveaBox R50-FPN, 500 scale: FoveaBox's targets, GIoU-based localisation error of
# the boxes decoded from the points; 4 GPUs x 8 images, 100 epochs, lr 0.008, steps at 75 and 95.
# (The paper's config is named 4x4, but it trains 8 images a GPU, from its base data file.)
# Paper: 39.7 AP, 67.2 oLRP (minival).
_base_ = [
    '../_base_/models/fovea_r50_fpn.py',
    '../_base_/datasets/coco_detection_ssd-aug-500.py',
    '../_base_/schedules/schedule_100e_step-75-95.py',
    '../_base_/alrp_runtime.py',
]

model = dict(
    bbox_head=dict(
        type='aLRPFoveaHead',
        loss_bbox=None,  # the ranking loss regresses
        loss_cls=dict(
            _delete_=True,
            type='aLRPLoss',
            tau=0.5,
            self_balance=dict(type='SelfBalance', init_weight=50.0),
        ),
    )
)

optim_wrapper = dict(optimizer=dict(lr=0.008))

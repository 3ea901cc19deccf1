# aLRP Loss ATSS on the synthetic shapes, for a CPU: the demo detector (backbone, neck, data,
# schedule of _base_/retinanet_r18-c16_shapes.py) with an aLRPATSSHead (MMDetection's ATSS head
# without its centerness branch) of the demo's head size: GroupNorm, 2 stacked convolutions of
# 32 channels, a learnt scale per level, one square anchor per location as ATSS has, 4 strides
# wide (16 to 128 px on strides 4 to 32, for the shapes' 6 to 100 px), ATSSAssigner top 9.
# Not measured by `make demo-compare`: no results.
# Predict scores a box by the sigmoid of its class logit alone (no centerness factor).
# SelfBalanceHook every 16 iterations, as the aLRP RetinaNet demo (see its config).
_base_ = './_base_/retinanet_r18-c16_shapes.py'

model = dict(
    type='ATSS',
    bbox_head=dict(
        _delete_=True,
        type='aLRPATSSHead',
        loss_bbox=None,  # the ranking loss regresses
        num_classes=5,
        in_channels=32,
        feat_channels=32,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        anchor_generator=dict(
            type='AnchorGenerator',
            ratios=[1.0],
            octave_base_scale=4,
            scales_per_octave=1,
            strides=[4, 8, 16, 32],
        ),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[0.1, 0.1, 0.2, 0.2],
        ),
        loss_cls=dict(type='aLRPLoss'),
    ),
    train_cfg=dict(
        _delete_=True,
        assigner=dict(type='ATSSAssigner', topk=9),
        allowed_border=-1,
        pos_weight=-1,
        debug=False,
    ),
)

custom_hooks = [dict(type='SelfBalanceHook', period=16)]

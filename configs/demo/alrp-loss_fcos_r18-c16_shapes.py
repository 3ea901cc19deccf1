# aLRP Loss FCOS on the synthetic shapes, for a CPU: the demo detector (backbone, neck, data,
# schedule of _base_/retinanet_r18-c16_shapes.py) with an aLRPFCOSHead (MMDetection's FCOS head
# without its centerness branch) of the demo's head size: GroupNorm, 2 stacked convolutions of
# 32 channels, points on strides 4 to 32 with FCOS's regress ranges scaled to them (each level
# takes the boxes whose largest side distance is up to 8 strides, as FCOS's (-1, 64) on
# stride 8). Not measured by `make demo-compare`: no results.
# Predict scores a box by the sigmoid of its class logit alone (no centerness factor).
# SelfBalanceHook every 16 iterations, as the aLRP RetinaNet demo (see its config).
_base_ = './_base_/retinanet_r18-c16_shapes.py'

model = dict(
    type='FCOS',
    bbox_head=dict(
        _delete_=True,
        type='aLRPFCOSHead',
        loss_bbox=None,  # the ranking loss regresses
        num_classes=5,
        in_channels=32,
        feat_channels=32,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        strides=[4, 8, 16, 32],
        regress_ranges=((-1, 32), (32, 64), (64, 128), (128, 1e8)),
        loss_cls=dict(type='aLRPLoss'),
    ),
    train_cfg=dict(_delete_=True),
)

custom_hooks = [dict(type='SelfBalanceHook', period=16)]

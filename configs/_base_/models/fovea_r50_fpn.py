# FoveaBox R50-FPN (MMDetection's FoveaHead settings, Focal Loss and Smooth L1) on the
# backbone and neck of RetinaNet R50-FPN.
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'

model = dict(
    type='FOVEA',
    bbox_head=dict(
        _delete_=True,
        type='FoveaHead',
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        base_edge_list=[16, 32, 64, 128, 256],
        scale_ranges=((1, 64), (32, 128), (64, 256), (128, 512), (256, 2048)),
        sigma=0.4,
        with_deform=False,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=1.5, alpha=0.4, loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=0.11, loss_weight=1.0),
    ),
    train_cfg=dict(_delete_=True),
)

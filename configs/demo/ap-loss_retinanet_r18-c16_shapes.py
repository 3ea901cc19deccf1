# AP Loss RetinaNet (Chen et al., CVPR 2019) on the synthetic shapes, for a CPU: the ranking
# loss for classification, Smooth L1 regression on the positives; the ranking-based baseline of
# aLRP Loss. APLoss averages Smooth L1 over the 4 coordinates of every positive (the
# aLRP paper's COCO recipe); loss_weight 4 makes this demo's regression the sum over the
# coordinates averaged over the positives.
_base_ = './_base_/retinanet_r18-c16_shapes.py'

model = dict(
    bbox_head=dict(
        type='APLossRetinaHead',
        loss_bbox=None,  # the ranking loss regresses
        loss_cls=dict(
            _delete_=True,
            type='APLoss',
            loss_bbox=dict(type='SmoothL1Loss', beta=0.11, loss_weight=4.0),
        ),
    )
)

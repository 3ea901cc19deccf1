# RetinaNet R50-FPN trained with aLRP Loss: MaxIoU assigner (positive IoU >= 0.5, negative
# < 0.4), 6 anchors per location (2 scales x 3 ratios), boxes decoded from the deltas for the
# GIoU-based localisation error, no sampling.
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'

model = dict(
    bbox_head=dict(
        type='aLRPRetinaHead',
        loss_bbox=None,  # the ranking loss regresses
        anchor_generator=dict(octave_base_scale=4, scales_per_octave=2, ratios=[0.5, 1.0, 2.0]),
        bbox_coder=dict(target_stds=[0.1, 0.1, 0.2, 0.2]),
        reg_decoded_bbox=True,
        loss_cls=dict(
            _delete_=True,
            type='aLRPLoss',
            tau=0.5,
            self_balance=dict(type='SelfBalance', init_weight=50.0),
        ),
    )
)

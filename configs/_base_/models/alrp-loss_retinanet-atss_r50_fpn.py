# RetinaNet R50-FPN trained with aLRP Loss on ATSS positives (top 9 anchors per level by centre
# distance), 2 anchors per location (2 scales, ratio 1): RetinaNet's head (no normalisation, no
# per-level regression scale, no centerness) on ATSSHead's targets, aLRPATSSHead.
_base_ = './alrp-loss_retinanet_r50_fpn.py'

model = dict(
    bbox_head=dict(
        type='aLRPATSSHead',
        loss_bbox=None,  # the ranking loss regresses
        norm_cfg=None,
        scale_per_level=False,
        anchor_generator=dict(scales_per_octave=2, ratios=[1.0]),
    ),
    train_cfg=dict(assigner=dict(_delete_=True, type='ATSSAssigner', topk=9)),
)

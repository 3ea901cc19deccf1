# RS Loss ATSS R50-FPN (Oksuz et al., ICCV 2021): MMDetection's ATSS (GroupNorm head of 4
# stacked convolutions, a learnt scale per level, ATSSAssigner top 9) with 3 anchors per
# location (octave base scale 4, 3 scales an octave, ratio 1) and no centerness branch: one Rank
# & Sort Loss ranks the class logits of ATSS's positives by the IoU of their boxes, whose GIoU
# loss it self-balances every iteration. Prediction scores a box by the sigmoid of its logit.
# 4 GPUs x 4 images, 12 epochs, lr 0.008, steps at 8 and 11. Paper: 39.9 AP, 67.9 oLRP (minival).
_base_ = [
    '../_base_/models/r50_fpn_p3-p7.py',
    '../_base_/datasets/coco_detection_4xb4.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='ATSS',
    bbox_head=dict(
        type='RankingATSSHead',
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        anchor_generator=dict(
            type='AnchorGenerator',
            ratios=[1.0],
            octave_base_scale=4,
            scales_per_octave=3,
            strides=[8, 16, 32, 64, 128],
        ),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[0.1, 0.1, 0.2, 0.2],
        ),
        loss_cls=dict(type='RankSortLoss'),
        loss_bbox=None,  # the ranking loss regresses
    ),
    train_cfg=dict(
        assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1, pos_weight=-1, debug=False
    ),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100,
    ),
)

optim_wrapper = dict(optimizer=dict(lr=0.008))

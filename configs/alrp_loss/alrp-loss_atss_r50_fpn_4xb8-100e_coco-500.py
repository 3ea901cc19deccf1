# aLRP Loss ATSS R50-FPN, 500 scale. NOT A ROW OF THE PAPER: the aLRP Loss paper (Oksuz et al.,
# NeurIPS 2020) reports RetinaNet trained on ATSS positives (alrp-loss_retinanet-atss_*), not
# MMDetection's ATSS head, and there are no weights and no measured metrics for this config.
# The detector is MMDetection's ATSS (its neck with extra convolutions on the P5 output, its
# head: GroupNorm, 4 stacked convolutions, a learnt scale per level on the regression, one
# 8-stride anchor per location, ATSSAssigner top 9, deltas with stds (0.1, 0.1, 0.2, 0.2),
# NMS at 0.6) without the centerness branch: one aLRP Loss ranks the class logits and localises
# the decoded boxes of ATSS's positives. Prediction scores a box by the sigmoid of its class
# logit alone (no centerness factor), takes the top 1000 per level, then per-class NMS.
# The recipe is that of the paper's ATSS rows at 500 scale: torchvision's pretrained ResNet-50,
# SSD-style augmentation, 4 GPUs x 8 images, 100 epochs of SGD, lr 0.008, steps at 75 and 95.
_base_ = [
    '../_base_/models/r50_fpn_p3-p7.py',
    '../_base_/datasets/coco_detection_ssd-aug-500.py',
    '../_base_/schedules/schedule_100e_step-75-95.py',
    '../_base_/alrp_runtime.py',
]

model = dict(
    type='ATSS',
    bbox_head=dict(
        type='aLRPATSSHead',
        loss_bbox=None,  # the ranking loss regresses
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        anchor_generator=dict(
            type='AnchorGenerator',
            ratios=[1.0],
            octave_base_scale=8,
            scales_per_octave=1,
            strides=[8, 16, 32, 64, 128],
        ),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[0.1, 0.1, 0.2, 0.2],
        ),
        loss_cls=dict(type='aLRPLoss'),
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

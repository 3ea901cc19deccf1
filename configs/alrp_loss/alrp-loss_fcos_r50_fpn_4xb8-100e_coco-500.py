# aLRP Loss FCOS R50-FPN, 500 scale. NOT A ROW OF THE PAPER: the aLRP Loss paper (Oksuz et al.,
# NeurIPS 2020) has no FCOS result, and there are no weights and no measured metrics for this
# config. The detector is MMDetection's FCOS (its neck with extra convolutions on the P5
# output, its head: GroupNorm, 4 stacked convolutions, a learnt scale per level, exp-encoded
# distances, FCOS's regress ranges, no centre sampling) without the centerness branch: one aLRP
# Loss ranks the class logits and localises the boxes decoded from the points of FCOS's own
# targets. Prediction scores a box by the sigmoid of its class logit alone (no centerness
# factor), takes the top 1000 per level, then per-class NMS at IoU 0.5.
# The recipe is that of the paper's ATSS rows at 500 scale: torchvision's pretrained ResNet-50,
# SSD-style augmentation, 4 GPUs x 8 images, 100 epochs of SGD, lr 0.008, steps at 75 and 95
# (FCOS's 1x schedule clips gradients and doubles the bias lr; the paper's recipe does neither).
_base_ = [
    '../_base_/models/r50_fpn_p3-p7.py',
    '../_base_/datasets/coco_detection_ssd-aug-500.py',
    '../_base_/schedules/schedule_100e_step-75-95.py',
    '../_base_/alrp_runtime.py',
]

model = dict(
    type='FCOS',
    neck=dict(relu_before_extra_convs=True),
    bbox_head=dict(
        type='aLRPFCOSHead',
        loss_bbox=None,  # the ranking loss regresses
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        loss_cls=dict(type='aLRPLoss'),
    ),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=100,
    ),
)

optim_wrapper = dict(optimizer=dict(lr=0.008))

# Rank & Sort Loss RetinaNet (Oksuz et al., ICCV 2021) on the synthetic shapes, for a CPU: a
# ranking loss that ranks the positives above the negatives and sorts the positives by the IoU
# of their boxes, and a score-weighted GIoU loss on the decoded boxes, balanced to the ranking
# loss every iteration (no SelfBalanceHook: the weight has no state). The RS paper trains with
# the learning rate of aLRP Loss (0.008 for 16 images with SGD), so this config keeps the demo's
# (AdamW, lr 4e-3 for 16 images), as the aLRP Loss config does.
_base_ = './_base_/retinanet_r18-c16_shapes.py'

model = dict(
    bbox_head=dict(
        type='RankingRetinaHead',
        reg_decoded_bbox=True,
        loss_bbox=None,  # the ranking loss regresses
        loss_cls=dict(_delete_=True, type='RankSortLoss'),
    )
)

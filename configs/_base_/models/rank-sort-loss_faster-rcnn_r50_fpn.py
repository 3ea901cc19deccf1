# Faster R-CNN R50-FPN trained with Rank & Sort Loss in both stages, no sampling: the RPN
# (RankingRPNHead, head weight 0.2, deltas encoded with stds (0.1, 0.1, 0.2, 0.2), every anchor
# the assigner does not ignore) and the R-CNN (RankingBBoxHead: sigmoid classifier of 80 logits,
# GIoU regression of the decoded boxes, every proposal and ground-truth box: KeepAllSampler).
# Each RankSortLoss balances its box loss to its ranking and sorting losses every iteration.
# Prediction keeps the R-CNN boxes scoring at least 0.4.
_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'

model = dict(
    rpn_head=dict(
        type='RankingRPNHead',
        bbox_coder=dict(target_stds=[0.1, 0.1, 0.2, 0.2]),
        reg_decoded_bbox=True,
        loss_cls=dict(_delete_=True, type='RankSortLoss', loss_weight=0.2),
        loss_bbox=None,  # the ranking loss regresses
    ),
    roi_head=dict(
        bbox_head=dict(
            type='RankingBBoxHead',
            reg_decoded_bbox=True,
            loss_cls=dict(_delete_=True, type='RankSortLoss'),
            loss_bbox=None,  # the ranking loss regresses
        )
    ),
    train_cfg=dict(
        rpn=dict(sampler=dict(_delete_=True, type='PseudoSampler')),
        rcnn=dict(sampler=dict(_delete_=True, type='KeepAllSampler', add_gt_as_proposals=True)),
    ),
    test_cfg=dict(rcnn=dict(score_thr=0.4)),
)

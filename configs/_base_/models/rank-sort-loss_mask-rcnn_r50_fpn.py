# Mask R-CNN R50-FPN trained with Rank & Sort Loss in both stages, no sampling: the RPN
# (RankingRPNHead, head weight 0.2, deltas encoded with stds (0.1, 0.1, 0.2, 0.2), every anchor
# the assigner does not ignore), the R-CNN (RankingBBoxHead: sigmoid classifier of 80 logits,
# GIoU regression of the decoded boxes, every proposal and ground-truth box: KeepAllSampler) and
# the mask head (RankingFCNMaskHead: 1 - Dice of each positive's 28 x 28 mask). Box and mask
# losses are weighted per positive by its detached score and self-balanced every iteration to
# the R-CNN's ranking and sorting losses (RankSortRoIHead: at most 200 masks a batch).
# Prediction keeps the R-CNN boxes scoring at least 0.4.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'

model = dict(
    rpn_head=dict(
        type='RankingRPNHead',
        bbox_coder=dict(target_stds=[0.1, 0.1, 0.2, 0.2]),
        reg_decoded_bbox=True,
        loss_cls=dict(_delete_=True, type='RankSortLoss', loss_weight=0.2),
        loss_bbox=None,  # the ranking loss regresses
    ),
    roi_head=dict(
        type='RankSortRoIHead',
        max_train_masks=200,
        bbox_head=dict(
            type='RankingBBoxHead',
            reg_decoded_bbox=True,
            loss_cls=dict(_delete_=True, type='RankSortLoss'),
            loss_bbox=None,  # the ranking loss regresses
        ),
        mask_head=dict(
            type='RankingFCNMaskHead',
            # 1 - 2 sum(p t) / (sum(p^2) + sum(t^2) + 1e-5): DiceLoss adds eps to both sums
            loss_mask=dict(
                _delete_=True,
                type='DiceLoss',
                use_sigmoid=True,
                activate=True,
                naive_dice=False,
                eps=5e-6,
            ),
        ),
    ),
    train_cfg=dict(
        rpn=dict(sampler=dict(_delete_=True, type='PseudoSampler')),
        rcnn=dict(sampler=dict(_delete_=True, type='KeepAllSampler', add_gt_as_proposals=True)),
    ),
    test_cfg=dict(rcnn=dict(score_thr=0.4)),
)

# RS Loss Mask R-CNN R50-FPN (Oksuz et al., ICCV 2021): Rank & Sort Loss in the RPN (head weight
# 0.2) and the R-CNN, no sampling, GIoU regression and a Dice mask loss, each weighted per
# positive by its detached score and self-balanced every iteration to the R-CNN's ranking and
# sorting losses (RankSortRoIHead, RankingFCNMaskHead: at most 200 masks a batch).
# 4 GPUs x 4 images, 12 epochs, lr 0.012, steps at 8 and 11. Prediction keeps the boxes scoring
# at least 0.4 (the RS configs' speed setting). Paper: 36.4 mask AP, 40.0 box AP, 70.1 mask oLRP,
# 67.5 box oLRP (minival).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]

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

# 4 GPUs x 4 images: 16 images per iteration (the base_batch_size of mmdet's schedules)
train_dataloader = dict(batch_size=4, num_workers=4)
optim_wrapper = dict(optimizer=dict(lr=0.012))

# COCO AP and the optimal LRP (oLRP) of the boxes and of the masks
val_evaluator = dict(type='CocoLRPMetric')
test_evaluator = val_evaluator

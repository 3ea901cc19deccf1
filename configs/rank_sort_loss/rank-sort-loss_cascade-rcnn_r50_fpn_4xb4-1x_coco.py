# RS Loss Cascade R-CNN R50-FPN (Oksuz et al., ICCV 2021): the RS RPN of the Faster R-CNN row
# (anchors at the image border ignored) and three RankingBBoxHead stages (positive IoU 0.5,
# 0.6, 0.7), each with its own Rank & Sort Loss on every proposal and ground-truth box,
# class-agnostic regression with deltas of stds (0.1, 0.1, 0.2, 0.2) in every stage, stage loss
# weights 1, 1, 1. Prediction averages the class logits of the stages and keeps scores >= 0.4.
# 4 GPUs x 4 images, 12 epochs, lr 0.012, steps at 8 and 11. Paper: 41.3 AP, 66.6 oLRP (minival).
_base_ = './rank-sort-loss_faster-rcnn_r50_fpn_4xb4-1x_coco.py'

stage_iou_thrs = [0.5, 0.6, 0.7]

model = dict(
    type='CascadeRCNN',
    roi_head=dict(
        _delete_=True,
        type='CascadeRoIHead',
        num_stages=3,
        stage_loss_weights=[1, 1, 1],
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32],
        ),
        bbox_head=[
            dict(
                type='RankingBBoxHead',
                in_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=80,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0.0, 0.0, 0.0, 0.0],
                    target_stds=[0.1, 0.1, 0.2, 0.2],
                ),
                reg_class_agnostic=True,
                reg_decoded_bbox=True,
                loss_cls=dict(type='RankSortLoss'),
                loss_bbox=None,  # the ranking loss regresses
            )
            for _ in stage_iou_thrs
        ],
    ),
    train_cfg=dict(
        rpn=dict(allowed_border=0),
        rcnn=[
            dict(
                assigner=dict(
                    type='MaxIoUAssigner',
                    pos_iou_thr=iou_thr,
                    neg_iou_thr=iou_thr,
                    min_pos_iou=iou_thr,
                    match_low_quality=False,
                    ignore_iof_thr=-1,
                ),
                sampler=dict(type='KeepAllSampler', add_gt_as_proposals=True),
                pos_weight=-1,
                debug=False,
            )
            for iou_thr in stage_iou_thrs
        ],
    ),
)

# aLRP Loss Cascade R-CNN R50-FPN, 500 scale. NOT A ROW OF THE PAPER: the aLRP Loss paper
# (Oksuz et al., NeurIPS 2020) has no Cascade R-CNN result, and there are no weights and no
# measured metrics for this config.
# The RPN, backbone, neck, data, schedule (lr 0.012, the paper's two-stage row) and runtime are
# those of the aLRP Faster R-CNN row, which this config inherits: aLRP Loss in the RPN (head
# weight 0.2, tau 0.7, no sampling). The R-CNN is a RankingCascadeRoIHead (MMDetection's
# CascadeRoIHead that checks all the batch's ground truth first) of three stages (stage loss
# weights 1, 0.5, 0.25; class-agnostic regression, deltas with MMDetection's per-stage stds),
# each stage an aLRPBBoxHead with its own aLRP Loss and self-balance: sigmoid
# classifier of 80 logits, localisation error (1 - GIoU) / (2 (1 - tau)) with tau the stage's
# positive IoU threshold (0.5, 0.6, 0.7), every RoI the assigner does not ignore in the loss
# (PseudoSampler, as in the Faster R-CNN row). SelfBalanceHook updates the four self-balances
# (RPN and three stages) every epoch.
# Prediction: each proposal is refined by the stages in turn (class-agnostic boxes), its class
# logits are averaged over the three stages and scored by their sigmoid (with a zero background
# column for mmdet's multiclass NMS), then per-class NMS at IoU 0.5.
_base_ = './alrp-loss_faster-rcnn_r50_fpn_4xb8-100e_coco-500.py'

stage_iou_thrs = [0.5, 0.6, 0.7]
stage_target_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]

model = dict(
    type='CascadeRCNN',
    roi_head=dict(
        _delete_=True,
        type='RankingCascadeRoIHead',  # checks every ground truth, matched or not
        num_stages=3,
        stage_loss_weights=[1, 0.5, 0.25],
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32],
        ),
        bbox_head=[
            dict(
                type='aLRPBBoxHead',
                loss_bbox=None,  # the ranking loss regresses
                in_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=80,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0.0, 0.0, 0.0, 0.0],
                    target_stds=target_stds,
                ),
                reg_class_agnostic=True,
                reg_decoded_bbox=True,
                loss_cls=dict(type='aLRPLoss', tau=iou_thr),
            )
            for iou_thr, target_stds in zip(stage_iou_thrs, stage_target_stds)
        ],
    ),
    train_cfg=dict(
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
                sampler=dict(type='PseudoSampler'),
                pos_weight=-1,
                debug=False,
            )
            for iou_thr in stage_iou_thrs
        ]
    ),
)

optim_wrapper = dict(optimizer=dict(lr=0.012))

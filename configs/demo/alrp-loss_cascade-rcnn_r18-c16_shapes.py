# aLRP Loss Cascade R-CNN on the synthetic shapes, for a CPU: the demo's backbone, neck
# (P2-P5, 32 channels), data and schedule (_base_/retinanet_r18-c16_shapes.py) under a Cascade
# R-CNN with aLRP Loss in the RPN and in each of its three stages, wired as the COCO config
# configs/alrp_loss/alrp-loss_cascade-rcnn_r50_fpn_4xb8-100e_coco-500.py: RPN with head weight
# 0.2 and tau 0.7 on the demo's anchors (3 square ones per location, 8 to 101 px on strides 4
# to 32), no sampling anywhere, stages at IoU 0.5 / 0.6 / 0.7 with tau equal to it, each with
# its own self-balance; fully connected layers of 256 (1024 on COCO) and fewer proposals (300
# per image) for the CPU, where a training step still costs several times the aLRP RetinaNet
# demo's. Not measured by `make demo-compare`: no results.
# Predict: the sigmoid of the class logits averaged over the three stages.
# SelfBalanceHook every 16 iterations, as the aLRP RetinaNet demo (see its config).
_base_ = './_base_/retinanet_r18-c16_shapes.py'

stage_iou_thrs = [0.5, 0.6, 0.7]
stage_target_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]

model = dict(
    _delete_=True,
    type='CascadeRCNN',
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone={{_base_.model.backbone}},
    neck={{_base_.model.neck}},
    rpn_head=dict(
        type='aLRPRPNHead',
        loss_bbox=None,  # the ranking loss regresses
        in_channels=32,
        feat_channels=32,
        anchor_generator={{_base_.model.bbox_head.anchor_generator}},
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[0.1, 0.1, 0.2, 0.2],
        ),
        reg_decoded_bbox=True,
        loss_cls=dict(type='aLRPLoss', loss_weight=0.2, tau=0.7),
        init_cfg=dict(
            type='Normal',
            layer='Conv2d',
            std=0.01,
            override=dict(type='Normal', name='rpn_cls', std=0.01, bias_prob=0.01),
        ),
    ),
    roi_head=dict(
        type='RankingCascadeRoIHead',  # checks every ground truth, matched or not
        num_stages=3,
        stage_loss_weights=[1, 0.5, 0.25],
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=32,
            featmap_strides=[4, 8, 16, 32],
        ),
        bbox_head=[
            dict(
                type='aLRPBBoxHead',
                loss_bbox=None,  # the ranking loss regresses
                in_channels=32,
                fc_out_channels=256,
                roi_feat_size=7,
                num_classes=5,
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
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1,
            ),
            sampler=dict(type='PseudoSampler'),
            allowed_border=-1,
            pos_weight=-1,
            debug=False,
        ),
        rpn_proposal=dict(
            nms_pre=1000, max_per_img=300, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0
        ),
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
        ],
    ),
    # Every detection is kept (score threshold 0), as in the other demo configs.
    test_cfg=dict(
        rpn=dict(
            nms_pre=1000, max_per_img=300, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0
        ),
        rcnn=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100),
    ),
)

custom_hooks = [dict(type='SelfBalanceHook', period=16)]

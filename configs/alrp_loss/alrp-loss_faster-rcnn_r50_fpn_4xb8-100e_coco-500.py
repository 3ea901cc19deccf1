# aLRP Loss Faster R-CNN (Oksuz et al., NeurIPS 2020): aLRP Loss in the RPN (head weight 0.2;
# deltas encoded with stds (0.1, 0.1, 0.2, 0.2), the paper's, not mmdet's RPN (1, 1, 1, 1);
# objectness bias initialised to a prior of 0.01) and in the R-CNN (sigmoid classifier, GIoU
# regression), no sampling in either stage, each loss with its own self-balance updated every
# epoch by SelfBalanceHook (alrp_runtime.py).
# 500 scale, 4 GPUs x 8 images, 100 epochs, lr 0.012, steps at 75 and 95.
# Paper: 40.7 AP, 66.7 oLRP (minival).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection_ssd-aug-500.py',
    '../_base_/schedules/schedule_100e_step-75-95.py',
    '../_base_/alrp_runtime.py',
]

model = dict(
    rpn_head=dict(
        type='aLRPRPNHead',
        loss_bbox=None,  # the ranking loss regresses
        bbox_coder=dict(target_stds=[0.1, 0.1, 0.2, 0.2]),
        reg_decoded_bbox=True,
        loss_cls=dict(_delete_=True, type='aLRPLoss', loss_weight=0.2, tau=0.7),
        init_cfg=dict(
            type='Normal',
            layer='Conv2d',
            std=0.01,
            override=dict(type='Normal', name='rpn_cls', std=0.01, bias_prob=0.01),
        ),
    ),
    roi_head=dict(
        type='RankingRoIHead',  # checks every ground truth, matched by a RoI or not
        bbox_head=dict(
            type='aLRPBBoxHead',
            loss_bbox=None,  # the ranking loss regresses
            reg_class_agnostic=False,
            reg_decoded_bbox=True,
            loss_cls=dict(_delete_=True, type='aLRPLoss', tau=0.5),
        ),
    ),
    train_cfg=dict(
        rpn=dict(sampler=dict(_delete_=True, type='PseudoSampler')),
        rcnn=dict(sampler=dict(_delete_=True, type='PseudoSampler')),
    ),
)

optim_wrapper = dict(optimizer=dict(lr=0.012))

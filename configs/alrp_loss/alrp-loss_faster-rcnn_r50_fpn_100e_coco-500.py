# aLRP Loss Faster R-CNN (Oksuz et al., NeurIPS 2020): aLRP Loss in the RPN (head weight 0.2)
# and in the R-CNN (sigmoid classifier, GIoU regression), no sampling in either stage, each
# loss with its own self-balance updated every epoch by SelfBalanceHook.
# Model part only: the training recipe (100 epochs, SSD-style augmentation, 500 scale) is to
# be completed.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmdet_alrp'], allow_failed_imports=False)

model = dict(
    rpn_head=dict(
        type='aLRPRPNHead',
        reg_decoded_bbox=True,
        tau=0.7,
        loss_cls=dict(_delete_=True, type='aLRPLoss', loss_weight=0.2)),
    roi_head=dict(
        bbox_head=dict(
            type='aLRPBBoxHead',
            reg_class_agnostic=False,
            reg_decoded_bbox=True,
            tau=0.5,
            loss_cls=dict(_delete_=True, type='aLRPLoss'))),
    train_cfg=dict(
        rpn=dict(sampler=dict(_delete_=True, type='PseudoSampler')),
        rcnn=dict(sampler=dict(_delete_=True, type='PseudoSampler'))))

custom_hooks = [dict(type='SelfBalanceHook')]

# aLRP Loss RetinaNet (Oksuz et al., NeurIPS 2020) on the synthetic shapes, for a CPU: one
# ranking loss for classification and localisation (GIoU-based, on the decoded boxes), the
# localisation part weighted by the self-balance (SB) weight, which starts at 50 and is reset
# every epoch by SelfBalanceHook. The head has no regression loss of its own (the loss_bbox
# inherited from the base is not used). As in the paper, a higher learning rate than AP Loss.
_base_ = './_base_/retinanet_r18-c16_shapes.py'

model = dict(
    bbox_head=dict(
        type='aLRPRetinaHead',
        loss_cls=dict(_delete_=True, type='aLRPLoss'),
        self_balance=dict(type='SelfBalance', init_weight=50.)))

optim_wrapper = dict(optimizer=dict(lr=0.02))
custom_hooks = [dict(type='SelfBalanceHook')]

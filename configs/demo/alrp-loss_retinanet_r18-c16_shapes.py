# aLRP Loss RetinaNet (Oksuz et al., NeurIPS 2020) on the synthetic shapes, for a CPU: one
# ranking loss for classification and localisation (GIoU-based, on the decoded boxes), the
# localisation part weighted by the self-balance (SB) weight, which starts at 50 and is reset
# by SelfBalanceHook every 16 iterations: the paper resets it every epoch, but its COCO epochs
# have thousands of iterations and this demo's 63, too few updates for SB to settle near its
# balance value (about 4 here).
_base_ = './_base_/retinanet_r18-c16_shapes.py'

model = dict(
    bbox_head=dict(
        type='aLRPRetinaHead',
        loss_bbox=None,  # the ranking loss regresses
        loss_cls=dict(
            _delete_=True, type='aLRPLoss', self_balance=dict(type='SelfBalance', init_weight=50.0)
        ),
    )
)

custom_hooks = [dict(type='SelfBalanceHook', period=16)]

# RS-SOLOv2 R101-FPN (Oksuz et al., ICCV 2021): MMDetection 3.3's SOLOv2 R101 recipe
# (mmdet::solov2/solov2_r101_fpn_ms-3x_coco.py: 4 stacked convs of 512 channels, 256 mask
# feature channels, train scales (1333, 640..800), test at (1333, 800); 8 GPUs x 2 images, 36
# epochs, steps at 27 and 33, gradient clipping at 35) with Rank & Sort Loss on the category
# branch: the positive cells ranked above the negatives and sorted by the Dice coefficient of
# their masks, and SOLOv2's Dice mask loss weighted by the cells' scores and self-balanced to
# the ranking losses (RankingSOLOV2Head). Our recipe record has no config of the RS paper for
# SOLOv2: the recipe is mmdet 3.3's, but for the learning rate, that of the RS-SOLOv2 code's
# configs (0.006 for 16 images; mmdet's SOLOv2 trains at 0.01).
# Paper: 39.7 mask AP, 66.9 mask oLRP (minival; its own SOLOv2 on MMDetection 1.0).
_base_ = 'mmdet::solov2/solov2_r101_fpn_ms-3x_coco.py'

# as ../_base_/default_runtime.py: our modules registered, a checkpoint every epoch, the last 3
custom_imports = dict(imports=['mmdet_alrp'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))

model = dict(
    mask_head=dict(
        type='RankingSOLOV2Head',
        # SOLOv2's Dice (eps 1e-3 on both sums); the self-balance sets its scale
        loss_mask=dict(loss_weight=1.0),
        loss_cls=dict(_delete_=True, type='RankSortLoss'),
    )
)

# 8 GPUs x 2 images: 16 images per iteration (the base_batch_size of mmdet's schedules)
optim_wrapper = dict(optimizer=dict(lr=0.006))

# COCO mask AP and the optimal LRP (oLRP) of the masks
val_evaluator = dict(type='CocoLRPMetric', metric='segm')
test_evaluator = val_evaluator

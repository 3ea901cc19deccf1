# RS Loss Mask R-CNN R50-FPN (Oksuz et al., ICCV 2021): Rank & Sort Loss in the RPN (head weight
# 0.2) and the R-CNN, no sampling, GIoU regression and a Dice mask loss, each weighted per
# positive by its detached score and self-balanced every iteration to the R-CNN's ranking and
# sorting losses (RankSortRoIHead, RankingFCNMaskHead: at most 200 masks a batch).
# 4 GPUs x 4 images, 12 epochs, lr 0.012, steps at 8 and 11. Prediction keeps the boxes scoring
# at least 0.4 (the RS configs' speed setting). Paper: 36.4 mask AP, 40.0 box AP, 70.1 mask oLRP,
# 67.5 box oLRP (minival).
_base_ = [
    '../_base_/models/rank-sort-loss_mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]

# 4 GPUs x 4 images: 16 images per iteration (the base_batch_size of mmdet's schedules)
train_dataloader = dict(batch_size=4, num_workers=4)
optim_wrapper = dict(optimizer=dict(lr=0.012))

# COCO AP and the optimal LRP (oLRP) of the boxes and of the masks
val_evaluator = dict(type='CocoLRPMetric')
test_evaluator = val_evaluator

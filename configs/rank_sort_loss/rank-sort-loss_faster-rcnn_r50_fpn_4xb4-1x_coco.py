# RS Loss Faster R-CNN R50-FPN (Oksuz et al., ICCV 2021): Rank & Sort Loss in the RPN (head
# weight 0.2) and the R-CNN, no sampling, GIoU regression self-balanced every iteration.
# 4 GPUs x 4 images, 12 epochs, lr 0.012, steps at 8 and 11. Paper: 39.6 AP, 67.9 oLRP (minival).
_base_ = [
    '../_base_/models/rank-sort-loss_faster-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection_4xb4.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]

optim_wrapper = dict(optimizer=dict(lr=0.012))

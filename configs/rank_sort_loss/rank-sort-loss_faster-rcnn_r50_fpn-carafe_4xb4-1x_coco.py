# RS Loss Faster R-CNN R50 with the CARAFE FPN (Oksuz et al., ICCV 2021): the R50-FPN row with
# content-aware upsampling in the FPN (fpn-carafe.py). Images padded to a multiple of 32.
# 4 GPUs x 4 images, 12 epochs, lr 0.012, steps at 8 and 11. Paper: 40.8 AP, 66.9 oLRP (minival).
_base_ = [
    './rank-sort-loss_faster-rcnn_r50_fpn_4xb4-1x_coco.py',
    '../_base_/models/fpn-carafe.py',
]

model = dict(neck=dict(_delete_=True, **_base_.fpn_carafe))

# RS Loss Mask R-CNN R50 with the CARAFE FPN (Oksuz et al., ICCV 2021): the R50-FPN row with
# content-aware upsampling in the FPN (fpn-carafe.py); the mask head's upsampling stays a
# deconvolution, as in the RS configs. 4 GPUs x 4 images, 12 epochs, lr 0.012, steps at 8 and
# 11. Paper: 37.3 mask AP, 41.1 box AP, 69.4 mask oLRP, 66.6 box oLRP (minival).
_base_ = [
    './rank-sort-loss_mask-rcnn_r50_fpn_4xb4-1x_coco.py',
    '../_base_/models/fpn-carafe.py',
]

model = dict(neck=dict(_delete_=True, **_base_.fpn_carafe))

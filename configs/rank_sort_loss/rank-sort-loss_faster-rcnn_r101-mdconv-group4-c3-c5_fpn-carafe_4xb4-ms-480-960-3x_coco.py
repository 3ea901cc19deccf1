# RS Loss Faster R-CNN R101 with DCNv2 (4 offset groups) in c3-c5 and the CARAFE FPN (Oksuz et
# al., ICCV 2021), trained at 7 scales (short side 480 to 960). Images padded to a multiple of 32.
# 4 GPUs x 4 images, 36 epochs, lr 0.012, steps at 27 and 33. Paper: 47.7 AP, 60.9 oLRP (minival).
_base_ = [
    './rank-sort-loss_faster-rcnn_r101-mdconv-group4-c3-c5_fpn_4xb4-ms-480-960-3x_coco.py',
    '../_base_/models/fpn-carafe.py',
]

model = dict(neck=dict(_delete_=True, **_base_.fpn_carafe))

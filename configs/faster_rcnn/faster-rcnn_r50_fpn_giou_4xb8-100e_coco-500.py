# Faster R-CNN R50-FPN with cross-entropy and GIoU Loss (weight 10, on the R-CNN's decoded
# boxes; the RPN keeps L1), 500 scale (the aLRP Loss paper's baseline): the CE + L1 recipe.
# Paper: 38.2 AP, 69.0 oLRP (minival).
_base_ = './faster-rcnn_r50_fpn_4xb8-100e_coco-500.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            reg_decoded_bbox=True, loss_bbox=dict(_delete_=True, type='GIoULoss', loss_weight=10.0)
        )
    )
)

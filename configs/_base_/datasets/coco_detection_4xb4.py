# COCO 2017 as MMDetection trains its 1x detectors: images resized to fit (1333, 800) keeping
# their ratio, horizontal flips with probability 0.5, 4 GPUs x 4 images; COCO AP and oLRP on
# minival (val2017).
_base_ = 'mmdet::_base_/datasets/coco_detection.py'

# 4 GPUs x 4 images: 16 images per iteration (the auto_scale_lr.base_batch_size of mmdet's
# schedules, from which --auto-scale-lr scales lr). Each batch holds images of one orientation
# (AspectRatioBatchSampler, inherited).
train_dataloader = dict(batch_size=4, num_workers=4)

# COCO AP and the optimal LRP (oLRP) of the boxes
val_evaluator = dict(type='CocoLRPMetric')
test_evaluator = val_evaluator

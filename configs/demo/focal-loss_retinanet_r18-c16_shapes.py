# mmdet's RetinaNet (Focal Loss classification, L1 regression) on the synthetic shapes, for a
# CPU: the score-based baseline of configs/demo/.
_base_ = './_base_/retinanet_r18-c16_shapes.py'

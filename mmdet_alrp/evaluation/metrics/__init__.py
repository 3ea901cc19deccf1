from .coco_lrp_metric import CocoLRPMetric

__all__ = ['CocoLRPMetric']

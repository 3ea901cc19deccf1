from .coco_lrp_metric import CocoLRPMetric
from .lvis_lrp_metric import LVISLRPMetric

__all__ = ['CocoLRPMetric', 'LVISLRPMetric']

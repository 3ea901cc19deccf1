from .functional import ClassMatches, ClassOLRP, coco_class_matches, optimal_lrp
from .metrics import CocoLRPMetric

__all__ = ['ClassMatches', 'ClassOLRP', 'coco_class_matches', 'optimal_lrp', 'CocoLRPMetric']

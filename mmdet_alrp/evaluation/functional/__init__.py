from .coco_matches import ClassMatches, coco_class_matches
from .lrp import ClassOLRP, optimal_lrp

__all__ = ['ClassMatches', 'coco_class_matches', 'ClassOLRP', 'optimal_lrp']

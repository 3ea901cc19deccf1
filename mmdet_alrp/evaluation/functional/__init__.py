from .coco_matches import ClassMatches, coco_class_matches
from .lrp import ClassOLRP, optimal_lrp
from .lvis_matches import lvis_class_matches

__all__ = ['ClassMatches', 'coco_class_matches', 'lvis_class_matches', 'ClassOLRP', 'optimal_lrp']

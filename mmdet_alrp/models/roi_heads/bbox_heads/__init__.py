from .alrp_bbox_head import aLRPBBoxHead
from .roi_ranking_adapter import RoIRankingAdapter

__all__ = ['aLRPBBoxHead', 'RoIRankingAdapter']

from .alrp_bbox_head import aLRPBBoxHead
from .ranking_bbox_head import RankingBBoxHead
from .roi_ranking_adapter import RoIRankingAdapter

__all__ = ['RankingBBoxHead', 'aLRPBBoxHead', 'RoIRankingAdapter']

from .bbox_heads import RoIRankingAdapter, aLRPBBoxHead
from .ranking_cascade_roi_head import RankingCascadeRoIHead
from .ranking_roi_head import RankingRoIHead

__all__ = ['aLRPBBoxHead', 'RoIRankingAdapter', 'RankingRoIHead', 'RankingCascadeRoIHead']

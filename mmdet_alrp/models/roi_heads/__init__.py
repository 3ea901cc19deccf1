from .bbox_heads import RankingBBoxHead, RoIRankingAdapter, aLRPBBoxHead
from .ranking_cascade_roi_head import RankingCascadeRoIHead
from .ranking_roi_head import RankingRoIHead

__all__ = [
    'RankingBBoxHead', 'aLRPBBoxHead', 'RoIRankingAdapter', 'RankingRoIHead',
    'RankingCascadeRoIHead'
]

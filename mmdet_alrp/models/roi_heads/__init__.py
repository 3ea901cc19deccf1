from .bbox_heads import RankingBBoxHead, RoIRankingAdapter, aLRPBBoxHead
from .mask_heads import RankingFCNMaskHead
from .ranking_roi_head import RankingRoIHead

__all__ = [
    'RankingBBoxHead',
    'aLRPBBoxHead',
    'RoIRankingAdapter',
    'RankingFCNMaskHead',
    'RankingRoIHead',
]

from .bbox_heads import RankingBBoxHead, RoIRankingAdapter, aLRPBBoxHead
from .mask_heads import RankingFCNMaskHead
from .rank_sort_roi_head import RankSortRoIHead
from .ranking_cascade_roi_head import RankingCascadeRoIHead
from .ranking_roi_head import RankingRoIHead

__all__ = [
    'RankingBBoxHead',
    'aLRPBBoxHead',
    'RoIRankingAdapter',
    'RankingFCNMaskHead',
    'RankingRoIHead',
    'RankingCascadeRoIHead',
    'RankSortRoIHead',
]

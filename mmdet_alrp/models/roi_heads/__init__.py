from .bbox_heads import RoIRankingAdapter, aLRPBBoxHead
from .mask_heads import RankingFCNMaskHead
from .ranking_roi_head import RankingRoIHead

__all__ = ['aLRPBBoxHead', 'RoIRankingAdapter', 'RankingFCNMaskHead', 'RankingRoIHead']

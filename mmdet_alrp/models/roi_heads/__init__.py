from .bbox_heads import RankingBBoxHead, RoIRankingAdapter, aLRPBBoxHead

__all__ = ['RankingBBoxHead', 'aLRPBBoxHead', 'RoIRankingAdapter']

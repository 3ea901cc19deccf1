from .bbox_heads import RoIRankingAdapter, aLRPBBoxHead

__all__ = ['aLRPBBoxHead', 'RoIRankingAdapter']

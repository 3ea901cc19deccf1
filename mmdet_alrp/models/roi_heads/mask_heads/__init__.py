from .ranking_fcn_mask_head import RankingFCNMaskHead

__all__ = ['RankingFCNMaskHead']

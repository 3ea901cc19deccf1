from .alrp_loss import aLRPLoss
from .ap_loss import APLoss
from .loc_error import giou_loc_error, giou_loss
from .rank_sort_loss import RankSortLoss
from .ranking_loss import RankingLoss
from .self_balance import SelfBalance

__all__ = [
    'aLRPLoss',
    'APLoss',
    'RankSortLoss',
    'RankingLoss',
    'SelfBalance',
    'giou_loc_error',
    'giou_loss',
]

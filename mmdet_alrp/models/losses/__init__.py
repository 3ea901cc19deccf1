from .alrp_loss import aLRPLoss
from .ap_loss import APLoss
from .loc_error import giou_loc_error
from .self_balance import SelfBalance

__all__ = ['aLRPLoss', 'APLoss', 'SelfBalance', 'giou_loc_error']

from .alrp_loss import aLRPLoss, alrp_loss
from .ap_loss import APLoss, ap_loss
from .self_balance import SelfBalance

__all__ = ['alrp_loss', 'ap_loss', 'aLRPLoss', 'APLoss', 'SelfBalance']

from .alrp_loss import aLRPLoss
from .ap_loss import APLoss
from .self_balance import SelfBalance

__all__ = ['aLRPLoss', 'APLoss', 'SelfBalance']

from .alrp_head_loss import alrp_head_loss
from .loc_error import giou_loc_error

__all__ = ['alrp_head_loss', 'giou_loc_error']

from .alrp_atss_head import aLRPATSSHead
from .alrp_fcos_head import aLRPFCOSHead
from .alrp_fovea_head import aLRPFoveaHead
from .alrp_retina_head import aLRPRetinaHead
from .alrp_rpn_head import aLRPRPNHead
from .anchor_ranking_adapter import AnchorRankingAdapter
from .ap_loss_fovea_head import APLossFoveaHead
from .ap_loss_retina_head import APLossRetinaHead
from .point_ranking_adapter import PointRankingAdapter

__all__ = [
    'aLRPRetinaHead',
    'aLRPATSSHead',
    'aLRPFCOSHead',
    'aLRPFoveaHead',
    'aLRPRPNHead',
    'APLossRetinaHead',
    'APLossFoveaHead',
    'AnchorRankingAdapter',
    'PointRankingAdapter',
]

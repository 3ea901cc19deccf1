from .alrp_atss_head import aLRPATSSHead
from .alrp_fcos_head import aLRPFCOSHead
from .alrp_fovea_head import aLRPFoveaHead
from .alrp_retina_head import aLRPRetinaHead
from .alrp_rpn_head import aLRPRPNHead
from .anchor_ranking_adapter import AnchorRankingAdapter
from .ap_loss_fovea_head import APLossFoveaHead
from .ap_loss_retina_head import APLossRetinaHead
from .point_ranking_adapter import PointRankingAdapter
from .ranking_atss_head import RankingATSSHead
from .ranking_fcos_head import RankingFCOSHead
from .ranking_fovea_head import RankingFoveaHead
from .ranking_paa_head import RankingPAAHead
from .ranking_retina_head import RankingRetinaHead
from .ranking_rpn_head import RankingRPNHead
from .ranking_solov2_head import RankingSOLOV2Head
from .ranking_yolact_head import RankingYOLACTHead
from .ranking_yolact_protonet import RankingYOLACTProtonet

__all__ = [
    'RankingRetinaHead',
    'RankingATSSHead',
    'RankingFCOSHead',
    'RankingFoveaHead',
    'RankingRPNHead',
    'RankingPAAHead',
    'RankingSOLOV2Head',
    'RankingYOLACTHead',
    'RankingYOLACTProtonet',
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

from .alrp_fovea_head import aLRPFoveaHead
from .alrp_head_mixin import aLRPHeadMixin
from .alrp_retina_head import aLRPRetinaHead
from .alrp_rpn_head import aLRPRPNHead
from .ap_loss_fovea_head import APLossFoveaHead
from .ap_loss_head_mixin import APLossHeadMixin
from .ap_loss_retina_head import APLossRetinaHead
from .ranking_utils import RankingTargets, ranking_labels, use_sigmoid_logits

__all__ = [
    'aLRPRetinaHead', 'aLRPFoveaHead', 'aLRPRPNHead', 'APLossRetinaHead', 'APLossFoveaHead',
    'aLRPHeadMixin', 'APLossHeadMixin', 'RankingTargets', 'ranking_labels', 'use_sigmoid_logits'
]

"""aLRP Loss FoveaBox head (Oksuz et al., NeurIPS 2020)."""
from mmdet.registry import MODELS

from .alrp_head_mixin import aLRPHeadMixin
from .ranking_fovea_head import RankingFoveaHead


@MODELS.register_module()
class aLRPFoveaHead(aLRPHeadMixin, RankingFoveaHead):
    """FoveaBox's head trained with aLRP Loss.

    One aLRP Loss over every point and class of the batch (see :class:`aLRPHeadMixin`), on
    FoveaHead's targets (see :class:`RankingFoveaHead`); predicted and target boxes are decoded
    from the points the way FoveaHead decodes its regression. Predicts as :class:`FoveaHead`.

    Args:
        num_classes (int): number of classes, without background.
        in_channels (int): channels of the input feature maps.
        loss_cls (dict): config of the :class:`aLRPLoss`.
        self_balance (dict): config of the :class:`SelfBalance` weight.
        tau (float): IoU threshold of a positive in the localisation error. Defaults to 0.5.
        **kwargs: the arguments of :class:`FoveaHead`.
    """

"""aLRP Loss FCOS head: FCOSHead's targets, no centerness branch."""

from mmdet.registry import MODELS

from .ranking_fcos_head import RankingFCOSHead


@MODELS.register_module()
class aLRPFCOSHead(RankingFCOSHead):
    """:class:`RankingFCOSHead` that takes aLRP Loss only (``loss_cls=dict(type='aLRPLoss')``,
    the default, with its ``tau``, ``self_balance``, ``loss_weight``)."""

    loss_types = ('aLRPLoss',)

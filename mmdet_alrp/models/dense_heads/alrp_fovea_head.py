"""aLRP Loss FoveaBox head (Oksuz et al., NeurIPS 2020)."""

from mmdet.registry import MODELS

from .ranking_fovea_head import RankingFoveaHead


@MODELS.register_module()
class aLRPFoveaHead(RankingFoveaHead):
    """:class:`RankingFoveaHead` that takes aLRP Loss only (``loss_cls=dict(type='aLRPLoss')``,
    the default, with its ``tau``, ``self_balance``, ``loss_weight``)."""

    loss_types = ('aLRPLoss',)

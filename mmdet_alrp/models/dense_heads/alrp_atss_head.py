"""aLRP Loss ATSS head: ATSSHead's targets, no centerness branch."""

from mmdet.registry import MODELS

from .ranking_atss_head import RankingATSSHead


@MODELS.register_module()
class aLRPATSSHead(RankingATSSHead):
    """:class:`RankingATSSHead` that takes aLRP Loss only (``loss_cls=dict(type='aLRPLoss')``,
    the default, with its ``tau``, ``self_balance``, ``loss_weight``); the aLRP Loss paper's
    RetinaNet-ATSS with ``scale_per_level=False, norm_cfg=None``."""

    loss_types = ('aLRPLoss',)

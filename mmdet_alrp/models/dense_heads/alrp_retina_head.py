"""aLRP Loss RetinaNet head (Oksuz et al., NeurIPS 2020)."""

from mmdet.registry import MODELS

from .ranking_retina_head import RankingRetinaHead


@MODELS.register_module()
class aLRPRetinaHead(RankingRetinaHead):
    """:class:`RankingRetinaHead` that takes aLRP Loss only (``loss_cls=dict(type='aLRPLoss')``,
    the default, with its ``tau``, ``self_balance``, ``loss_weight``); its targets are the
    ground-truth boxes themselves unless ``reg_decoded_bbox=False``."""

    loss_types = ('aLRPLoss',)

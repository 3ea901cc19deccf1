"""The region proposal network of aLRP Faster R-CNN."""

from mmdet.registry import MODELS

from .ranking_rpn_head import RankingRPNHead


@MODELS.register_module()
class aLRPRPNHead(RankingRPNHead):
    """:class:`RankingRPNHead` that takes aLRP Loss only (the default,
    ``dict(type='aLRPLoss', loss_weight=0.2)``, ``tau`` 0.7 unless given): ``loss_rpn_cls``,
    ``loss_rpn_bbox`` and, to log, ``rpn_alrp_cls``, ``rpn_alrp_loc``, ``rpn_sb_weight``,
    ``rpn_num_pos``."""

    loss_types = ('aLRPLoss',)

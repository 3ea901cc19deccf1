"""The RoI box head of aLRP Faster R-CNN and aLRP Cascade R-CNN."""

from mmdet.registry import MODELS

from .ranking_bbox_head import RankingBBoxHead


@MODELS.register_module()
class aLRPBBoxHead(RankingBBoxHead):
    """:class:`RankingBBoxHead` that takes aLRP Loss only (the default,
    ``dict(type='aLRPLoss')``: tau 0.5, the R-CNN assigner's)."""

    loss_types = ('aLRPLoss',)

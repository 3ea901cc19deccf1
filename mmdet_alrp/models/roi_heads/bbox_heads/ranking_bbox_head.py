"""The RoI box head of a ranking loss (aLRP, RS Faster R-CNN and Cascade R-CNN)."""

from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
from mmdet.registry import MODELS

from .roi_ranking_adapter import RoIRankingAdapter


@MODELS.register_module()
class RankingBBoxHead(RoIRankingAdapter, Shared2FCBBoxHead):
    """Two shared fcs with sigmoid classification, trained with a ranking loss (aLRPLoss,
    APLoss or RankSortLoss, by ``loss_cls``).

    One ranking loss over every RoI and class of the batch on BBoxHead's targets (see
    :class:`RoIRankingAdapter`); prediction runs per-class NMS on the sigmoid scores. With
    ``RankSortLoss`` and a :class:`KeepAllSampler` it is RS R-CNN's box head (one per stage in
    RS Cascade R-CNN).

    Args:
        loss_cls (dict): config of the ranking loss. Defaults to ``dict(type='aLRPLoss')``.
        reg_decoded_bbox (bool): must be True: the targets are the gt boxes themselves.
        **kwargs: the arguments of :class:`Shared2FCBBoxHead`; ``loss_bbox`` must be None.
    """

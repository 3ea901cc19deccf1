"""The FoveaBox head of a ranking loss."""

from mmdet.models.dense_heads import FoveaHead
from mmdet.registry import MODELS

from .point_ranking_adapter import PointRankingAdapter


@MODELS.register_module()
class RankingFoveaHead(PointRankingAdapter, FoveaHead):
    """FoveaBox's head trained with a ranking loss (aLRPLoss, APLoss or RankSortLoss, by
    ``loss_cls``).

    One ranking loss over every point and class of the batch, on FoveaHead's targets (see
    :class:`PointRankingAdapter`): a point inside the fovea of a ground-truth box of its level's
    scale range is a positive of the box's class, every other point a negative. For aLRPLoss and
    RankSortLoss the predicted and target boxes are decoded from the points as FoveaHead
    decodes its regression; APLoss's regression loss takes FoveaHead's log-distance targets.
    Predicts as :class:`FoveaHead`, with sigmoid scores.

    Args:
        num_classes (int): number of classes, without background.
        in_channels (int): channels of the input feature maps.
        loss_cls (dict): config of the ranking loss. Defaults to ``dict(type='aLRPLoss')``.
        **kwargs: the arguments of :class:`FoveaHead`.
    """

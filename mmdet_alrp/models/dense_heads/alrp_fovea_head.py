"""aLRP Loss FoveaBox head (Oksuz et al., NeurIPS 2020)."""

from mmdet.models.dense_heads import FoveaHead
from mmdet.registry import MODELS

from .point_ranking_adapter import PointRankingAdapter


@MODELS.register_module()
class aLRPFoveaHead(PointRankingAdapter, FoveaHead):
    """FoveaBox's head trained with aLRP Loss.

    One aLRP Loss over every point and class of the batch, on FoveaHead's targets (see
    :class:`PointRankingAdapter`): a point inside the fovea of a ground-truth box of its level's
    scale range is a positive of the box's class, every other point a negative. Predicted and
    target boxes are decoded from the points as FoveaHead decodes its regression. Predicts as
    :class:`FoveaHead`, with sigmoid scores.

    Args:
        num_classes (int): number of classes, without background.
        in_channels (int): channels of the input feature maps.
        loss_cls (dict): config of the :class:`aLRPLoss` (``tau``, ``self_balance``,
            ``loss_weight``). Defaults to ``dict(type='aLRPLoss')``.
        **kwargs: the arguments of :class:`FoveaHead`.
    """

    loss_types = ('aLRPLoss',)

"""AP Loss FoveaBox head (Chen et al., CVPR 2019), the baseline of aLRP Loss."""

from mmdet.models.dense_heads import FoveaHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType

from .point_ranking_adapter import PointRankingAdapter


@MODELS.register_module()
class APLossFoveaHead(PointRankingAdapter, FoveaHead):
    """FoveaBox's head trained with AP Loss and a regression loss on the positives.

    One AP Loss over every point and class of the batch and the :class:`APLoss`'s
    ``loss_bbox`` (Smooth L1 by default) on FoveaHead's log-distance targets of the positive
    points, averaged over their 4 coordinates each (see :class:`PointRankingAdapter`).

    Args:
        num_classes (int): number of classes, without background.
        in_channels (int): channels of the input feature maps.
        loss_cls (dict): config of the :class:`APLoss`, with its ``loss_bbox``. Defaults to
            ``dict(type='APLoss')``.
        **kwargs: the arguments of :class:`FoveaHead`.
    """

    loss_types = ('APLoss',)

    def __init__(self, *args, loss_cls: ConfigType = dict(type='APLoss'), **kwargs) -> None:
        super().__init__(*args, loss_cls=loss_cls, **kwargs)

"""AP Loss RetinaNet head (Chen et al., CVPR 2019), the baseline of aLRP Loss."""

from mmdet.models.dense_heads import RetinaHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType

from .anchor_ranking_adapter import AnchorRankingAdapter


@MODELS.register_module()
class APLossRetinaHead(AnchorRankingAdapter, RetinaHead):
    """RetinaNet's head trained with AP Loss and a regression loss on the positives.

    One AP Loss over every anchor and class of the batch and the :class:`APLoss`'s
    ``loss_bbox`` (Smooth L1 by default) on the positive anchors' deltas (boxes with
    ``reg_decoded_bbox``), averaged over their 4 coordinates each, on the targets of a
    MaxIoU-family assigner (see :class:`AnchorRankingAdapter`).

    Args:
        num_classes (int): number of classes, without background.
        in_channels (int): channels of the input feature maps.
        loss_cls (dict): config of the :class:`APLoss`, with its ``loss_bbox``. Defaults to
            ``dict(type='APLoss')``.
        **kwargs: the arguments of :class:`RetinaHead`.
    """

    loss_types = ('APLoss',)

    def __init__(self, *args, loss_cls: ConfigType = dict(type='APLoss'), **kwargs) -> None:
        super().__init__(*args, loss_cls=loss_cls, **kwargs)

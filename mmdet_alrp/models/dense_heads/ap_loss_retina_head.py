"""AP Loss RetinaNet head (Chen et al., CVPR 2019), the baseline of aLRP Loss."""

from mmdet.registry import MODELS
from mmdet.utils import ConfigType

from .ranking_retina_head import RankingRetinaHead


@MODELS.register_module()
class APLossRetinaHead(RankingRetinaHead):
    """:class:`RankingRetinaHead` that takes AP Loss only: one AP Loss over every anchor and
    class of the batch and the :class:`APLoss`'s ``loss_bbox`` (Smooth L1 by default) on the
    positive anchors' deltas (boxes with ``reg_decoded_bbox=True``), averaged over their 4
    coordinates each.

    Args:
        loss_cls (dict): config of the :class:`APLoss`, with its ``loss_bbox``. Defaults to
            ``dict(type='APLoss')``.
        **kwargs: the arguments of :class:`RankingRetinaHead`.
    """

    loss_types = ('APLoss',)

    def __init__(self, *args, loss_cls: ConfigType = dict(type='APLoss'), **kwargs) -> None:
        super().__init__(*args, loss_cls=loss_cls, **kwargs)

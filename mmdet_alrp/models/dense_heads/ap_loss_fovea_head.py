"""AP Loss FoveaBox head (Chen et al., CVPR 2019), the baseline of aLRP Loss."""

from mmdet.registry import MODELS
from mmdet.utils import ConfigType

from .ranking_fovea_head import RankingFoveaHead


@MODELS.register_module()
class APLossFoveaHead(RankingFoveaHead):
    """:class:`RankingFoveaHead` that takes AP Loss only: one AP Loss over every point and class
    of the batch and the :class:`APLoss`'s ``loss_bbox`` (Smooth L1 by default) on FoveaHead's
    log-distance targets of the positive points, averaged over their 4 coordinates each.

    Args:
        loss_cls (dict): config of the :class:`APLoss`, with its ``loss_bbox``. Defaults to
            ``dict(type='APLoss')``.
        **kwargs: the arguments of :class:`RankingFoveaHead`.
    """

    loss_types = ('APLoss',)

    def __init__(self, *args, loss_cls: ConfigType = dict(type='APLoss'), **kwargs) -> None:
        super().__init__(*args, loss_cls=loss_cls, **kwargs)

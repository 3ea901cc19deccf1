"""AP Loss RetinaNet head (Chen et al., CVPR 2019), the baseline of aLRP Loss."""
from mmdet.registry import MODELS

from .ap_loss_head_mixin import APLossHeadMixin
from .ranking_retina_head import RankingRetinaHead


@MODELS.register_module()
class APLossRetinaHead(APLossHeadMixin, RankingRetinaHead):
    """RetinaNet's head trained with AP Loss and a regression loss on the positives.

    One AP Loss over every anchor and class of the batch, ``loss_bbox`` (Smooth L1 by default) on
    the positive anchors averaged over their 4 coordinates each (see :class:`APLossHeadMixin`),
    on the targets of the configured assigner (see :class:`RankingRetinaHead`).

    Args:
        num_classes (int): number of classes, without background.
        in_channels (int): channels of the input feature maps.
        loss_cls (dict): config of the :class:`APLoss`.
        loss_bbox (dict): config of the regression loss.
        **kwargs: the arguments of :class:`RetinaHead`.
    """

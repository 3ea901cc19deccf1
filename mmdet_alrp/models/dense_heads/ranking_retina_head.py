"""The RetinaNet head of a ranking loss."""

from typing import Optional

from mmdet.models.dense_heads import RetinaHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType

from ..utils import default_reg_decoded_bbox
from .anchor_ranking_adapter import AnchorRankingAdapter


@MODELS.register_module()
class RankingRetinaHead(AnchorRankingAdapter, RetinaHead):
    """RetinaNet's head trained with a ranking loss (aLRPLoss, APLoss or RankSortLoss, by
    ``loss_cls``).

    One ranking loss over every anchor and class of the batch, on the targets of a
    MaxIoU-family assigner (see :class:`AnchorRankingAdapter`; for ``ATSSAssigner`` use
    :class:`RankingATSSHead`). Predicts with sigmoid scores as :class:`RetinaHead`.

    Args:
        num_classes (int): number of classes, without background.
        in_channels (int): channels of the input feature maps.
        loss_cls (dict): config of the ranking loss. Defaults to ``dict(type='aLRPLoss')``.
        reg_decoded_bbox (bool, optional): targets are the ground-truth boxes themselves (True)
            or their encodings (False; decoded back for a loss of decoded boxes). Defaults to
            None: True for aLRPLoss and RankSortLoss, False for APLoss.
        **kwargs: the arguments of :class:`RetinaHead`.

    Example:
        >>> import torch
        >>> head = RankingRetinaHead(num_classes=3, in_channels=8, feat_channels=8,
        ...                          loss_cls=dict(type='RankSortLoss'))
        >>> cls_score, bbox_pred = head.forward_single(torch.rand(1, 8, 16, 16))
        >>> cls_score.shape[1] == head.num_base_priors * 3
        True
    """

    def __init__(
        self,
        *args,
        loss_cls: ConfigType = dict(type='aLRPLoss'),
        reg_decoded_bbox: Optional[bool] = None,
        **kwargs,
    ) -> None:
        super().__init__(
            *args,
            loss_cls=loss_cls,
            reg_decoded_bbox=default_reg_decoded_bbox(loss_cls, reg_decoded_bbox),
            **kwargs,
        )

"""The FCOS head of a ranking loss: FCOSHead's targets, no centerness branch."""

from typing import Tuple

from mmcv.cnn import Scale
from torch import Tensor

from mmdet.models.dense_heads import FCOSHead
from mmdet.registry import MODELS

from .point_ranking_adapter import PointRankingAdapter


@MODELS.register_module()
class RankingFCOSHead(PointRankingAdapter, FCOSHead):
    """FCOS's head trained with a ranking loss (aLRPLoss, APLoss or RankSortLoss, by
    ``loss_cls``), without the centerness branch.

    One ranking loss over every point and class of the batch on FCOSHead's targets (regress
    ranges, ``center_sampling``, ``norm_on_bbox`` as configured; see
    :class:`PointRankingAdapter`). A ranking-based loss ranks the boxes by the classification
    score alone: the head has no centerness layer and predicts with the sigmoid scores (no
    centerness factor).

    Args:
        num_classes (int): number of classes, without background.
        in_channels (int): channels of the input feature maps.
        loss_cls (dict): config of the ranking loss. Defaults to ``dict(type='aLRPLoss')``.
        **kwargs: the arguments of :class:`FCOSHead` (``loss_centerness`` and
            ``centerness_on_reg`` are not used).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.loss_centerness = None

    def _init_layers(self) -> None:
        super()._init_layers()
        del self.conv_centerness

    def forward_single(self, x: Tensor, scale: Scale, stride: int) -> Tuple[Tensor, Tensor]:
        """Logits (N, C, H, W) and distances (N, 4, H, W) of one level, as FCOSHead's: in
        units of ``stride`` with ``norm_on_bbox`` (pixels in eval mode), else exp of the
        output."""
        # AnchorFreeHead's forward, past FCOSHead's (which adds the centerness)
        cls_score, bbox_pred, _, _ = super(FCOSHead, self).forward_single(x)
        bbox_pred = scale(bbox_pred).float()
        if not self.norm_on_bbox:
            return cls_score, bbox_pred.exp()
        bbox_pred = bbox_pred.clamp(min=0)
        return cls_score, bbox_pred if self.training else bbox_pred * stride

"""The ATSS head of a ranking loss: ATSSHead's targets, no centerness branch."""

from typing import Tuple

from mmcv.cnn import Scale
from torch import Tensor, nn

from mmdet.models.dense_heads import ATSSHead
from mmdet.registry import MODELS

from .anchor_ranking_adapter import AnchorRankingAdapter


def centerness_free_forward(head: ATSSHead, x: Tensor, scale: nn.Module) -> Tuple[Tensor, Tensor]:
    """ATSSHead's outputs of one level without the centerness: logits (N, num_base_priors * C,
    H, W) and deltas (N, num_base_priors * 4, H, W), in the dtype of the convs (the losses
    decode in float32); ``scale`` is the level's :class:`Scale` or ``nn.Identity``."""
    cls_feat, reg_feat = x, x
    for conv in head.cls_convs:
        cls_feat = conv(cls_feat)
    for conv in head.reg_convs:
        reg_feat = conv(reg_feat)
    return head.atss_cls(cls_feat), scale(head.atss_reg(reg_feat))


@MODELS.register_module()
class RankingATSSHead(AnchorRankingAdapter, ATSSHead):
    """ATSS's head trained with a ranking loss (aLRPLoss, APLoss or RankSortLoss, by
    ``loss_cls``), without the centerness branch.

    One ranking loss over every anchor and class of the batch on ATSSHead's targets (its
    ``ATSSAssigner``, see :class:`AnchorRankingAdapter`). A ranking-based loss ranks the boxes by
    the classification score alone: the head builds no centerness layer and predicts with the
    sigmoid scores (no centerness factor). With ``RankSortLoss`` and the head's defaults (GN,
    a learnt scale per level) it is RS-ATSS's head.

    With ``scale_per_level=False`` the regression has no learnt per-level scale, and with
    ``norm_cfg=None`` its convs no normalisation: RetinaNet's head, on ATSS's targets (the
    aLRP Loss paper's RetinaNet-ATSS; its parameters are named ``atss_cls``, ``atss_reg``).

    Args:
        num_classes (int): number of classes, without background.
        in_channels (int): channels of the input feature maps.
        scale_per_level (bool): a learnt :class:`Scale` of the regression per level (True, as
            ATSSHead) or none. Defaults to True.
        loss_cls (dict): config of the ranking loss. Defaults to ``dict(type='aLRPLoss')``.
        **kwargs: the arguments of :class:`ATSSHead` (``loss_centerness`` is not used).
    """

    def __init__(self, *args, scale_per_level: bool = True, **kwargs) -> None:
        self.scale_per_level = scale_per_level
        super().__init__(*args, **kwargs)
        self.loss_centerness = None

    def _init_layers(self) -> None:
        super()._init_layers()
        del self.atss_centerness
        if not self.scale_per_level:
            self.scales = nn.ModuleList([nn.Identity() for _ in self.prior_generator.strides])

    def forward_single(self, x: Tensor, scale: Scale) -> Tuple[Tensor, Tensor]:
        """Logits and deltas of one level (:func:`centerness_free_forward`)."""
        return centerness_free_forward(self, x, scale)

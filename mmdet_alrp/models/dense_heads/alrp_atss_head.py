"""aLRP Loss ATSS head: ATSSHead's targets, no centerness branch."""

from typing import Tuple

from mmcv.cnn import Scale
from torch import Tensor, nn

from mmdet.models.dense_heads import ATSSHead
from mmdet.registry import MODELS

from .anchor_ranking_adapter import AnchorRankingAdapter


@MODELS.register_module()
class aLRPATSSHead(AnchorRankingAdapter, ATSSHead):
    """ATSS's head trained with aLRP Loss, without the centerness branch.

    One aLRP Loss over every anchor and class of the batch on ATSSHead's targets (its
    ``ATSSAssigner``, see :class:`AnchorRankingAdapter`). Like every ranking-based loss, aLRP
    Loss ranks the boxes by the classification score alone: the head builds no centerness
    layer and predicts with the sigmoid scores (no centerness factor).

    With ``scale_per_level=False`` the regression has no learnt per-level scale, and with
    ``norm_cfg=None`` its convs no normalisation: RetinaNet's head, on ATSS's targets (the
    paper's aLRP Loss RetinaNet-ATSS; its parameters are named ``atss_cls``, ``atss_reg``).

    Args:
        num_classes (int): number of classes, without background.
        in_channels (int): channels of the input feature maps.
        scale_per_level (bool): a learnt :class:`Scale` of the regression per level (True, as
            ATSSHead) or none. Defaults to True.
        loss_cls (dict): config of the :class:`aLRPLoss` (``tau``, ``self_balance``,
            ``loss_weight``). Defaults to ``dict(type='aLRPLoss')``.
        **kwargs: the arguments of :class:`ATSSHead` (``loss_centerness`` is not used).
    """

    loss_types = ('aLRPLoss',)

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
        """Logits (N, num_base_priors * C, H, W) and deltas (N, num_base_priors * 4, H, W) of
        one level, in the dtype of the convs (as RetinaHead's: the loss decodes in float32);
        ``scale`` is the level's :class:`Scale` or ``nn.Identity``."""
        cls_feat, reg_feat = x, x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        return self.atss_cls(cls_feat), scale(self.atss_reg(reg_feat))

"""aLRP Loss RetinaNet head (Oksuz et al., NeurIPS 2020)."""

from mmdet.models.dense_heads import RetinaHead
from mmdet.registry import MODELS

from .anchor_ranking_adapter import AnchorRankingAdapter


@MODELS.register_module()
class aLRPRetinaHead(AnchorRankingAdapter, RetinaHead):
    """RetinaNet's head trained with aLRP Loss.

    One aLRP Loss over every anchor and class of the batch, on the targets of a MaxIoU-family
    assigner (see :class:`AnchorRankingAdapter`; for ``ATSSAssigner`` use
    :class:`aLRPATSSHead`). Predicts with sigmoid scores as :class:`RetinaHead`.

    Args:
        num_classes (int): number of classes, without background.
        in_channels (int): channels of the input feature maps.
        reg_decoded_bbox (bool): targets are the ground-truth boxes themselves (True) or their
            encodings, decoded back for the loss (False). Defaults to True.
        loss_cls (dict): config of the :class:`aLRPLoss` (``tau``, ``self_balance``,
            ``loss_weight``). Defaults to ``dict(type='aLRPLoss')``.
        **kwargs: the arguments of :class:`RetinaHead`.

    Example:
        >>> import torch
        >>> head = aLRPRetinaHead(num_classes=3, in_channels=8, feat_channels=8)
        >>> cls_score, bbox_pred = head.forward_single(torch.rand(1, 8, 16, 16))
        >>> cls_score.shape[1] == head.num_base_priors * 3
        True
    """

    loss_types = ('aLRPLoss',)

    def __init__(self, *args, reg_decoded_bbox: bool = True, **kwargs) -> None:
        super().__init__(*args, reg_decoded_bbox=reg_decoded_bbox, **kwargs)

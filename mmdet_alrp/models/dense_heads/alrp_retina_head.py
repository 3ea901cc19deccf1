"""aLRP Loss RetinaNet head (Oksuz et al., NeurIPS 2020)."""
from mmdet.registry import MODELS

from .alrp_head_mixin import aLRPHeadMixin
from .ranking_retina_head import RankingRetinaHead


@MODELS.register_module()
class aLRPRetinaHead(aLRPHeadMixin, RankingRetinaHead):
    """RetinaNet's head trained with aLRP Loss.

    One aLRP Loss over every anchor and class of the batch (see :class:`aLRPHeadMixin`), on the
    targets of the configured assigner, ``MaxIoUAssigner`` or ``ATSSAssigner`` (see
    :class:`RankingRetinaHead`). Predicts with sigmoid scores as :class:`RetinaHead`.

    Args:
        num_classes (int): number of classes, without background.
        in_channels (int): channels of the input feature maps.
        reg_decoded_bbox (bool): targets are the ground-truth boxes themselves (True) or their
            encodings, decoded back for the loss (False). Defaults to True.
        loss_cls (dict): config of the :class:`aLRPLoss`.
        self_balance (dict): config of the :class:`SelfBalance` weight.
        tau (float): IoU threshold of a positive in the localisation error. Defaults to 0.5.
        **kwargs: the arguments of :class:`RetinaHead`.

    Example:
        >>> import torch
        >>> head = aLRPRetinaHead(num_classes=3, in_channels=8, feat_channels=8)
        >>> cls_score, bbox_pred = head.forward_single(torch.rand(1, 8, 16, 16))
        >>> cls_score.shape[1] == head.num_base_priors * 3
        True
    """

    def __init__(self, *args, reg_decoded_bbox: bool = True, **kwargs) -> None:
        super().__init__(*args, reg_decoded_bbox=reg_decoded_bbox, **kwargs)

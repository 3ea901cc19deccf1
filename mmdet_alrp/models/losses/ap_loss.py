"""AP Loss (Chen et al., CVPR 2019), the ranking-based predecessor of aLRP Loss."""

from typing import Dict

from torch import Tensor

from alrp_core import ap_loss
from alrp_core.checks import check_delta, check_non_negative
from mmdet.registry import MODELS
from mmdet.utils import ConfigType

from ..utils.input_checks import check_finite_outputs, check_use_sigmoid
from .ranking_loss import RankingLoss


@MODELS.register_module()
class APLoss(RankingLoss):
    """AP Loss of a head's batch for classification, and a regression loss on its positives.

    A head calls it with the logits and 1 / 0 / -1 labels of every image, prior and class of the
    batch and the regression outputs and targets of its positives in the head's target space
    (encoded; decoded boxes with the head's ``reg_decoded_bbox``), as mmdet's ``loss_bbox``.
    The regression loss is averaged over the 4P coordinates, as the aLRP Loss paper's AP Loss
    heads do (mmdet's RetinaHead and FoveaHead divide the sum by P, 4 times this value).

    Args:
        delta (float): half width of the linear part of the smoothed step, finite and > 0.
            Defaults to 1.0.
        loss_weight (float): scales the AP Loss, finite and >= 0. Defaults to 1.0.
        loss_bbox (dict): config of the regression loss. Defaults to Smooth L1 with beta 0.11.
        use_sigmoid (bool): must be True (heads read it to build one sigmoid logit per class).
    """

    #: Heads pass the positives' regression in their target space, as to mmdet's loss_bbox.
    decoded_boxes = False

    def __init__(
        self,
        delta: float = 1.0,
        loss_weight: float = 1.0,
        loss_bbox: ConfigType = dict(type='SmoothL1Loss', beta=0.11, loss_weight=1.0),
        use_sigmoid: bool = True,
    ) -> None:
        super().__init__()
        self.delta = check_delta(delta)
        self.loss_weight = check_non_negative('loss_weight', loss_weight)
        self.use_sigmoid = check_use_sigmoid('AP Loss', use_sigmoid)
        self.loss_bbox = MODELS.build(loss_bbox)

    def forward(
        self, logits: Tensor, labels: Tensor, pos_bbox_preds: Tensor, pos_bbox_targets: Tensor
    ) -> Dict[str, Tensor]:
        """AP Loss and the regression loss of the batch.

        Args:
            logits (Tensor): any shape, e.g. (A, C), the M logits of the batch.
            labels (Tensor): M labels (int): 1 positive, 0 negative, -1 ignored.
            pos_bbox_preds (Tensor): shape (P, 4), the positives' regression outputs, in index
                order of the flattened ``labels``.
            pos_bbox_targets (Tensor): shape (P, 4), their targets, in the same space.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox`` and ``num_pos = P`` (float).

        Raises:
            ValueError: if a regression target is not finite (a ground-truth box of zero width
                or height has an infinite encoding).
        """
        check_finite_outputs(
            'the regression targets of the positive priors',
            [pos_bbox_targets],
            'is a ground-truth box of zero width or height? Its encoding is infinite',
        )
        loss_cls = self.loss_weight * ap_loss(logits, labels, self.delta)
        loss_bbox = self.loss_bbox(
            pos_bbox_preds, pos_bbox_targets, avg_factor=pos_bbox_targets.numel()
        )
        num_pos = loss_cls.new_tensor(float(pos_bbox_targets.size(0)))
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox, num_pos=num_pos)

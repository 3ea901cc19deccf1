"""Rank & Sort Loss (Oksuz et al., ICCV 2021): ranking and sorting by IoU, and a score-weighted
GIoU loss balanced to them every iteration."""

from typing import Dict, Tuple

import torch
from torch import Tensor

from alrp_core import rs_loss
from alrp_core.checks import check_eps, check_non_negative
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps

from ..utils.input_checks import check_use_sigmoid
from .loc_error import giou_loss
from .ranking_loss import RankingLoss

#: A sum of box weights under this divides by 1 instead (the RS code's guard of its R-CNN and
#: RPN heads).
WEIGHT_SUM_FLOOR = 1e-10


@MODELS.register_module()
class RankSortLoss(RankingLoss):
    """Rank & Sort Loss of a head's batch and its box loss: everything RS needs for one head.

    A head calls it with the logits (A, C) and 1 / 0 / -1 labels of every image, prior and class
    of the batch and the decoded predicted and target boxes of its positives. Then:

    * the IoU target y_i of a positive is the IoU of its detached predicted box with its target;
    * :func:`alrp_core.rs_loss` gives ``L_rank`` and ``L_sort`` (positives sorted by y);
    * ``L_box = sum_i w_i (1 - GIoU_i) / sum_i w_i``, with w_i the detached highest class score
      (sigmoid) of positive i's prior (a sum under 1e-10 divides by 1);
    * self-balance, every iteration and without history:
      ``loss_bbox = SB * L_box`` with the detached ``SB = (L_rank + L_sort) / L_box``, so its
      value is ``L_rank + L_sort`` and its gradient that of L_box scaled by SB; computed by
      tensor operations only (no host synchronisation); SB is 0 when L_box is 0 (no positive,
      or every box exact);
    * ``loss_weight`` w (the RPN's head weight 0.2, say) scales the three terms.

    As the RS code: delta 0.5, the positive's own relation H(0) in its ranks, IoU targets of the
    detached boxes, weights and balance detached. Deliberately different: a positive whose
    predicted box misses its target (IoU 0) stays a positive with target 0 (the RS code turns
    it into a negative of the ranking while it still takes the box loss); ``loss_sort`` carries
    the sorting update, so a weight on it scales that part alone (the RS code hands both updates
    to ``loss_rank``; with equal weights the gradients are the same); a batch without positives
    gives zeros (with zero gradients) where the RS heads give constants or raise; SB never
    divides by zero; the boxes are compared in image space by every head (the RS RPN decodes
    them against a unit anchor with hard-coded stds, equal but for its width clipping).

    For mmdet's ``BBoxHead``: one sigmoid logit per class and sigmoid scores with a zero
    background column (see :class:`RankingLoss`).

    Args:
        delta (float): half width of the linear part of the smoothed step, finite and >= 0 (0:
            the hard step). Defaults to 0.5.
        eps (float): threshold of a positive's FP count (ranking) and mis-sorted count (sorting)
            under which that part of its update is not applied, finite and >= 0. Defaults to
            1e-10.
        loss_weight (float): the head weight w, finite and >= 0. Defaults to 1.0.
        use_sigmoid (bool): must be True (heads read it to build one sigmoid logit per class).
    """

    #: Heads pass the positives' boxes decoded, (x1, y1, x2, y2).
    decoded_boxes = True

    def __init__(
        self,
        delta: float = 0.5,
        eps: float = 1e-10,
        loss_weight: float = 1.0,
        use_sigmoid: bool = True,
    ) -> None:
        super().__init__()
        self.delta = check_non_negative('delta', delta)
        self.eps = check_eps(eps)
        self.loss_weight = check_non_negative('loss_weight', loss_weight)
        self.use_sigmoid = check_use_sigmoid('Rank & Sort Loss', use_sigmoid)

    def forward(
        self, logits: Tensor, labels: Tensor, pos_pred_boxes: Tensor, pos_target_boxes: Tensor
    ) -> Dict[str, Tensor]:
        """Rank & Sort Loss and the balanced box loss of the batch.

        Args:
            logits (Tensor): shape (A, C), the logits of every prior and class of the batch.
            labels (Tensor): shape (A, C), int: 1 positive, 0 negative, -1 ignored.
            pos_pred_boxes (Tensor): shape (P, 4), the predicted boxes (x1, y1, x2, y2) of the
                positives, in index order of the flattened ``labels``.
            pos_target_boxes (Tensor): shape (P, 4), their target boxes.

        Returns:
            dict[str, Tensor]: ``loss_rank = w L_rank``, ``loss_sort = w L_sort``,
            ``loss_bbox = w SB L_box`` and, to log, ``giou_error = L_box`` (before the
            balance), ``sb_weight = SB``, ``mean_iou`` (of the positives' IoU targets, 0
            without positives) and ``num_pos = P`` (float).

        Raises:
            ValueError: if ``logits`` is not (A, C), the labels' positives are not as many as
                the boxes, or a box is not finite (see :func:`giou_loss`).
        """
        if logits.dim() != 2:
            raise ValueError(
                f'RankSortLoss takes logits of shape (A, C), got {tuple(logits.shape)}: a '
                "positive's box weight is the highest score of its prior"
            )
        errors = giou_loss(pos_pred_boxes, pos_target_boxes)
        with torch.no_grad():
            boxes = pos_pred_boxes.float(), pos_target_boxes.float()
            ious = bbox_overlaps(*boxes, is_aligned=True).clamp(0, 1)  # no rounding past 1
            pos_rows = torch.nonzero(labels.reshape(logits.shape) == 1)[:, 0]
            if pos_rows.numel() != errors.numel():
                raise ValueError(
                    f'labels mark {pos_rows.numel()} positives but {errors.numel()} pairs of '
                    'boxes are given: one predicted and one target box a positive, in index '
                    'order of the flattened labels'
                )
            weights = logits[pos_rows].float().amax(1).sigmoid()
            weight_sum = weights.sum()
            weight_sum = torch.where(
                weight_sum < WEIGHT_SUM_FLOOR, torch.ones_like(weight_sum), weight_sum
            )
        loss_rank, loss_sort = rs_loss(logits, labels, ious, self.delta, self.eps)
        box_loss = (weights * errors).sum() / weight_sum
        balance = self.balance(loss_rank + loss_sort, box_loss)
        num_pos = errors.numel()
        return dict(
            loss_rank=self.loss_weight * loss_rank,
            loss_sort=self.loss_weight * loss_sort,
            loss_bbox=self.loss_weight * balance * box_loss,
            giou_error=box_loss.detach(),
            sb_weight=balance,
            mean_iou=ious.sum() / max(num_pos, 1),
            num_pos=box_loss.new_tensor(float(num_pos)),
        )

    def rank_and_sort(
        self, logits: Tensor, labels: Tensor, targets: Tensor
    ) -> Tuple[Tensor, Tensor]:
        """``w L_rank`` and ``w L_sort`` of the batch, its positives sorted by the given targets:
        for a head whose positives' quality is not the IoU of a box (RS-SOLOv2 sorts by the
        Dice coefficient of the masks); the head weighs and balances its other losses itself.

        Args:
            logits (Tensor): shape (A, C), the logits of every prior and class of the batch.
            labels (Tensor): shape (A, C), int: 1 positive, 0 negative, -1 ignored.
            targets (Tensor): shape (P, ), the sorting targets in [0, 1] of the positives, in
                index order of the flattened ``labels`` (no gradient reaches them).

        Returns:
            tuple[Tensor, Tensor]: ``loss_rank`` and ``loss_sort``, 0 (with zero gradients)
            without positives.
        """
        loss_rank, loss_sort = rs_loss(logits, labels, targets, self.delta, self.eps)
        return self.loss_weight * loss_rank, self.loss_weight * loss_sort

    @staticmethod
    def balance(ranking_value: Tensor, box_loss: Tensor) -> Tensor:
        """The detached SB weight ``ranking_value / box_loss`` (0 where ``box_loss`` is 0), on
        the device, by tensor operations alone."""
        target, value = ranking_value.detach(), box_loss.detach()
        nonzero = value > 0
        return torch.where(nonzero, target / torch.where(nonzero, value, 1.0), 0.0)

"""The GIoU loss of box pairs and the localisation error of aLRP Loss built on it."""

import torch
from torch import Tensor

from alrp_core.checks import check_real
from mmdet.structures.bbox import bbox_overlaps

#: What a non-finite localisation error of finite boxes means.
OVERFLOW_HINT = (
    'the GIoU of the predicted boxes overflows float32 (largest |coordinate| {:.3g}): the '
    'regression outputs diverged (lower the learning rate, clip the gradients)'
)


def check_tau(tau: float) -> float:
    """``tau`` (the IoU threshold of a positive, normalising the error) as a float, a real
    number in [0, 1) (ValueError otherwise)."""
    value = check_real('tau', tau)
    if not 0 <= value < 1:
        raise ValueError(f'tau must lie in [0, 1), got {tau!r}')
    return value


def giou_loss(pred_boxes: Tensor, target_boxes: Tensor) -> Tensor:
    """``1 - GIoU(pred, target)`` of matched box pairs, in [0, 2] (mmdet's ``bbox_overlaps``).

    Args:
        pred_boxes (Tensor): shape (N, 4), predicted boxes (x1, y1, x2, y2).
        target_boxes (Tensor): shape (N, 4), their target boxes (x1, y1, x2, y2).

    Returns:
        Tensor: shape (N, ), float32, differentiable in both box sets (also for N = 0, so that
        a batch without positives still reaches the regression layers, as DDP requires).

    Raises:
        ValueError: if a box is not finite, or the boxes are so large that their GIoU
            overflows float32 (diverged regression outputs).
    """
    for name, boxes in (('pred_boxes', pred_boxes), ('target_boxes', target_boxes)):
        if boxes.dim() != 2 or boxes.size(-1) != 4:
            raise ValueError(f'{name} must have shape (N, 4), got {tuple(boxes.shape)}')
    if pred_boxes.size(0) != target_boxes.size(0):
        raise ValueError(
            f'pred_boxes has {pred_boxes.size(0)} boxes but target_boxes has {target_boxes.size(0)}'
        )
    if pred_boxes.size(0) == 0:  # bbox_overlaps would return a tensor outside the graph
        return pred_boxes.float().sum(-1) * 0
    losses = 1 - bbox_overlaps(
        pred_boxes.float(), target_boxes.float(), mode='giou', is_aligned=True
    )
    if not bool(torch.isfinite(losses).all()):
        for name, boxes in (('pred_boxes', pred_boxes), ('target_boxes', target_boxes)):
            if not bool(torch.isfinite(boxes).all()):
                raise ValueError(f'NaN or Inf in {name}')
        largest = max(pred_boxes.abs().max().item(), target_boxes.abs().max().item())
        raise ValueError(OVERFLOW_HINT.format(largest))
    return losses


def giou_loc_error(pred_boxes: Tensor, target_boxes: Tensor, tau: float) -> Tensor:
    """``e = (1 - GIoU(pred, target)) / (2 * (1 - tau))`` of matched box pairs.

    1 - GIoU lies in [0, 2], so ``e`` lies in ``[0, 1 / (1 - tau)]``; ``tau`` is the IoU
    threshold that makes a positive (the paper normalises the error by it).

    Args:
        pred_boxes (Tensor): shape (N, 4), predicted boxes (x1, y1, x2, y2).
        target_boxes (Tensor): shape (N, 4), their target boxes (x1, y1, x2, y2).
        tau (float): positive IoU threshold, in [0, 1).

    Returns:
        Tensor: shape (N, ), float32, as :func:`giou_loss`.

    Raises:
        ValueError: as :func:`giou_loss`.
    """
    check_tau(tau)
    return giou_loss(pred_boxes, target_boxes) / (2 * (1 - tau))

"""Dense float64 references of Rank & Sort Loss (Oksuz et al., ICCV 2021) and of the
RankSortLoss module's box term, written from the equations of issue 23.

Every relation H(s_k - s_i) of a positive i is an explicit entry of a P x M matrix and every
sum runs over it; for small M only.
"""

from typing import Dict, Tuple

import numpy as np
import torch
from torch import Tensor


def step(x: np.ndarray, delta: float) -> np.ndarray:
    """H(x) = clamp(x / (2 delta) + 1/2, 0, 1), the hard step [x >= 0] for delta = 0."""
    if delta == 0:
        return (x >= 0).astype(np.float64)
    return np.clip(x / (2 * delta) + 0.5, 0.0, 1.0)


def rs_oracle(
    logits, labels, ious, delta: float = 0.5, eps: float = 1e-10
) -> Tuple[float, float, np.ndarray, np.ndarray]:
    """Rank & Sort Loss of M logits with 1 / 0 / -1 labels and the positives' IoU targets.

    Returns:
        tuple: ``loss_rank``, ``loss_sort`` and their error-driven updates, each of shape (M, )
        and divided by P: the ranking update (the positives' FP and their spread to the
        negatives) and the sorting update (the positives' sorting errors and their spread to
        the mis-sorted positives). All zero without a positive.
    """
    s = np.asarray(logits, dtype=np.float64).reshape(-1)
    t = np.asarray(labels).reshape(-1).astype(np.int64)
    y = np.asarray(ious, dtype=np.float64).reshape(-1)
    pos, neg = np.flatnonzero(t == 1), t == 0
    assert len(pos) == len(y)
    grad_rank, grad_sort = np.zeros_like(s), np.zeros_like(s)
    num_pos = len(pos)
    if num_pos == 0:
        return 0.0, 0.0, grad_rank, grad_sort
    rel = step(s[None, :] - s[pos][:, None], delta)  # rel[i, j] = H(s_j - s_i)
    pos_rel = rel[:, pos]  # k = i included
    rank_pos = pos_rel.sum(1)
    fp = rel[:, neg].sum(1)
    ranking = fp / (rank_pos + fp)
    sorting = (pos_rel @ (1 - y)) / rank_pos
    above = y[None, :] >= y[:, None]  # above[i, k] = [y_k >= y_i]
    target_sorting = ((above * pos_rel) @ (1 - y)) / (above * pos_rel).sum(1)
    sort_error = sorting - target_sorting
    missorted = (y[None, :] < y[:, None]) * pos_rel  # m_ik
    for i in range(num_pos):
        if fp[i] > eps:
            grad_rank[pos[i]] -= ranking[i]
            grad_rank[neg] += rel[i, neg] * ranking[i] / fp[i]
        if missorted[i].sum() > eps:
            grad_sort[pos[i]] -= sort_error[i]
            grad_sort[pos] += missorted[i] * sort_error[i] / missorted[i].sum()
    return (
        float(ranking.mean()),
        float(sort_error.mean()),
        grad_rank / num_pos,
        grad_sort / num_pos,
    )


def box_areas(boxes: Tensor) -> Tensor:
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def iou_and_giou(pred: Tensor, target: Tensor) -> Tuple[Tensor, Tensor]:
    """IoU and GIoU of paired boxes (x1, y1, x2, y2), shapes (P, 4), by the definitions."""
    inter = box_areas(
        torch.cat([torch.max(pred[:, :2], target[:, :2]), torch.min(pred[:, 2:], target[:, 2:])], 1)
    )
    union = box_areas(pred) + box_areas(target) - inter
    hull = box_areas(
        torch.cat([torch.min(pred[:, :2], target[:, :2]), torch.max(pred[:, 2:], target[:, 2:])], 1)
    )
    iou = inter / union
    return iou, iou - (hull - union) / hull


def rs_module_oracle(
    logits: Tensor,
    labels: Tensor,
    pred_boxes: Tensor,
    target_boxes: Tensor,
    delta: float = 0.5,
    eps: float = 1e-10,
    loss_weight: float = 1.0,
) -> Dict[str, Tensor]:
    """What RankSortLoss returns and the gradients it gives, in float64.

    Args:
        logits (Tensor): (A, C) logits; labels (A, C) 1 / 0 / -1; pred_boxes, target_boxes
            (P, 4) of the positives in index order of the flattened labels (pred_boxes may
            require grad: the box term's gradient is taken by autograd of the definitions).

    Returns:
        dict: ``loss_rank``, ``loss_sort``, ``loss_bbox`` (w (L_rank + L_sort): the value of the
        balanced box term), ``box_loss`` (L_box, the score-weighted mean of 1 - GIoU), ``ious``,
        ``weights`` (the positives' highest class scores), ``grad_logits`` (A, C) (the
        error-driven update times w) and ``surrogate``: a scalar whose gradient to
        ``pred_boxes`` is the module's (w SB dL_box / d boxes, SB = (L_rank + L_sort) / L_box).
    """
    logits64 = logits.detach().double()
    pred64, target64 = pred_boxes.double(), target_boxes.double()
    iou, giou = iou_and_giou(pred64.detach(), target64)
    loss_rank, loss_sort, grad_rank, grad_sort = rs_oracle(
        logits64.numpy(), labels.numpy(), iou.numpy(), delta, eps
    )
    rows = torch.nonzero(labels.reshape(logits.shape) == 1)[:, 0]
    weights = logits64.sigmoid().max(1).values[rows]
    _, giou_live = iou_and_giou(pred64, target64)
    weight_sum = weights.sum() if weights.sum() >= 1e-10 else torch.tensor(1.0, dtype=torch.float64)
    box_loss_live = (weights * (1 - giou_live)).sum() / weight_sum
    box_loss = box_loss_live.detach()
    balance = (loss_rank + loss_sort) / box_loss if box_loss > 0 else torch.tensor(0.0).double()
    grad_logits = loss_weight * torch.from_numpy(grad_rank + grad_sort).reshape(logits.shape)
    return dict(
        loss_rank=torch.tensor(loss_weight * loss_rank, dtype=torch.float64),
        loss_sort=torch.tensor(loss_weight * loss_sort, dtype=torch.float64),
        loss_bbox=loss_weight * balance * box_loss,
        box_loss=box_loss,
        ious=iou,
        weights=weights,
        grad_logits=grad_logits,
        surrogate=loss_weight * balance * box_loss_live,
    )

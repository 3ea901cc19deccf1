"""aLRP Loss (Oksuz et al., NeurIPS 2020): one ranking loss for classification and boxes."""

from typing import Tuple

import torch
from torch import Tensor

from .checks import check_delta, check_eps, check_tensors
from .ranking import ErrorDrivenValue, prepare_batch, rank_positives, zero_loss


def alrp_loss(
    logits: Tensor, targets: Tensor, loc_errors: Tensor, delta: float = 1.0, eps: float = 1e-5
) -> Tuple[Tensor, Tensor]:
    """aLRP Loss of a batch, split into its classification and localisation parts.

    With H(x) = clamp(x / (2 delta) + 1/2, 0, 1), for every positive i:
    rank+(i) = 1 + sum_{k positive, k != i} H(s_k - s_i), FP(i) = sum_{j negative} H(s_j - s_i),
    rank(i) = rank+(i) + FP(i).

    * ``loss_cls = 1 - mean_i rank+(i) / rank(i)``. Its gradient is aLRP's error-driven update:
      a positive with FP(i) > eps gets
      ``-(sum_{k positive, k != i} H(s_k - s_i) e_k + FP(i)) / rank(i)`` (0 otherwise), a negative
      j gets ``sum_i H(s_j - s_i) * (-g_i) / FP(i)`` over those positives, ignored logits 0; all
      divided by P. No gradient reaches ``loc_errors`` through it.
    * ``loss_loc``: positives sorted by descending logit (ties in index order),
      ``mean(cumsum(e) / rank)`` with the ranks as constants; its gradient reaches
      ``loc_errors`` only.

    Args:
        logits (Tensor): any shape, M logits of the batch (all images, levels, anchors and
            classes). float16/bfloat16 inputs and calls under autocast are computed in float32.
        targets (Tensor): M labels: 1 positive, 0 negative, -1 ignored (int), or bool.
        loc_errors (Tensor): shape (P, ), localisation error e >= 0 of the k-th positive in
            index order of ``targets``.
        delta (float): half width of the linear part of H, finite and > 0. Defaults to 1.0.
        eps (float): positives with FP(i) <= eps take no classification gradient; finite and
            >= 0. Defaults to 1e-5.

    Raises:
        ValueError: naming the argument that is not a tensor, the hyperparameter out of range,
            or the problem of the tensors (see ``prepare_batch``).

    Returns:
        tuple[Tensor, Tensor]: ``loss_cls`` in [0, 1] and ``loss_loc``, scalars (float32, or
        float64 for float64 logits). Both are 0, with zero gradients, when there is no positive.
    """
    check_tensors(logits=logits, targets=targets, loc_errors=loc_errors)
    delta, eps = check_delta(delta), check_eps(eps)
    with torch.autocast(device_type=logits.device.type, enabled=False):
        batch = prepare_batch(logits, targets, loc_errors, delta)
        num_pos = batch.num_pos
        if num_pos == 0:
            zero = zero_loss(batch.scores, batch.loc_errors)
            return zero, zero.clone()
        with torch.no_grad():
            ranks = rank_positives(batch)
            fp, rank = ranks.false_positives, ranks.rank
            errors = batch.loc_errors.detach().to(torch.float64)
            loss_cls = (fp / rank).mean()
            relevant = fp > eps
            higher_errors = ranks.intervals.among_centres(errors)
            pos_grad = torch.where(relevant, -(higher_errors + fp) / rank, torch.zeros_like(fp))
            neg_weights = -pos_grad / torch.where(relevant, fp, torch.ones_like(fp))
            update = ranks.negatives.update(neg_weights / num_pos, pos_grad / num_pos)
        loss_cls = ErrorDrivenValue.apply(batch.scores, loss_cls.to(batch.scores.dtype), update)

        order = ranks.descending
        cum_errors = torch.cumsum(batch.loc_errors[order].to(torch.float64), 0)
        loss_loc = (cum_errors / rank[order]).mean().to(batch.scores.dtype)
    return loss_cls, loss_loc

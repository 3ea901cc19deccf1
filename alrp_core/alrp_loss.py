"""aLRP Loss (Oksuz et al., NeurIPS 2020): one ranking loss for classification and boxes."""

from functools import partial
from typing import Tuple

import torch
from torch import Tensor

from .autograd import ErrorDrivenLossFunction, zero_loss
from .batch import prepare_batch
from .checks import check_delta, check_eps, check_ranking_tensors
from .ranks import rank_positives


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
        ValueError: naming the argument and its problem: not a tensor, a dtype, size or device
            that does not fit, a hyperparameter out of range (``alrp_core.checks``), NaN/Inf,
            labels out of {1, 0, -1}, errors < 0 or not one per positive (the scan,
            ``alrp_core.batch.prepare_batch``).

    Returns:
        tuple[Tensor, Tensor]: ``loss_cls`` in [0, 1] and ``loss_loc``, scalars (float32, or
        float64 for float64 logits). Both are 0, with zero gradients, when there is no positive.
    """
    check_ranking_tensors(logits, targets, loc_errors=loc_errors)
    delta, eps = check_delta(delta), check_eps(eps)
    with torch.autocast(device_type=logits.device.type, enabled=False):
        batch = prepare_batch(logits, targets, loc_errors, delta)
        num_pos = batch.num_pos
        if num_pos == 0:
            zero = zero_loss(batch.scores, batch.loc_errors)
            return zero, zero.clone()
        with torch.no_grad():
            errors = batch.loc_errors.to(torch.float64)
            ranks = rank_positives(batch, errors)
            fp, rank = ranks.false_positives, ranks.rank
            loss_cls = (fp / rank).mean()
            relevant = fp > eps
            # -g_i of a relevant positive; its weight on the negatives is -g_i / FP(i).
            primary = (ranks.weighted + fp) / rank
            gradient = ranks.negatives.error_driven_gradient(
                torch.where(relevant, primary / fp, 0.0) / num_pos,
                torch.where(relevant, -primary, 0.0) / num_pos,
            )
            order = ranks.descending
            sorted_rank = rank.index_select(0, order)
            loss_loc = (torch.cumsum(errors.index_select(0, order), 0) / sorted_rank).mean()
            # Its gradient with respect to e (the ranks constants): e[order[u]] enters the terms
            # t >= u.
            loc_grad = torch.full_like(sorted_rank, 1 / num_pos) / sorted_rank
            loc_grad = loc_grad.flip(0).cumsum(0).flip(0)
            loc_grad = torch.empty_like(loc_grad).scatter_(0, order, loc_grad)
        dtype = batch.scores.dtype
        loss_cls, loss_loc = ErrorDrivenLossFunction.apply(
            (gradient, partial(_scaled, loc_grad, batch.loc_errors.dtype)),
            batch.scores,
            batch.loc_errors,
            loss_cls.to(dtype),
            loss_loc.to(dtype),
        )
    return loss_cls, loss_loc


def _scaled(grad: Tensor, dtype: torch.dtype, scale: Tensor) -> Tensor:
    """``grad`` (float64) times the 0-dim ``scale``, in ``dtype``."""
    return (grad * scale.detach()).to(dtype)

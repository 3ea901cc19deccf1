"""AP Loss (Chen et al., CVPR 2019), the ranking-based predecessor of aLRP Loss."""

import torch
from torch import Tensor

from .autograd import ErrorDrivenLossFunction, zero_loss
from .batch import prepare_batch
from .checks import check_delta, check_ranking_tensors
from .ranks import rank_positives


def ap_loss(logits: Tensor, targets: Tensor, delta: float = 1.0) -> Tensor:
    """AP Loss of a batch with its error-driven update, on interpolated AP.

    With the ranks of :func:`alrp_loss`, the precision of positive i is rank+(i) / rank(i) and
    its error ``1 - precision = FP(i) / rank(i)``. Interpolated AP takes, for every positive, the
    best precision at its recall or beyond: the running maximum of the precision over the
    positives in ascending score order. ``loss = 1 - mean interpolated precision``. A positive
    gets ``g_i = -(1 - interpolated precision_i)``, a negative j
    ``sum_i H(s_j - s_i) * (-g_i) / FP(i)`` over positives with FP(i) > 0, so the primary terms
    of every positive balance; ignored logits get 0; all divided by P.

    Args:
        logits (Tensor): any shape, M logits (float16/bfloat16 computed in float32).
        targets (Tensor): M labels: 1 positive, 0 negative, -1 ignored (int), or bool.
        delta (float): half width of the linear part of H, finite and > 0. Defaults to 1.0.

    Raises:
        ValueError: naming the argument and its problem: not a tensor, a dtype, size or device
            that does not fit, a ``delta`` out of range (``alrp_core.checks``), NaN/Inf or
            labels out of {1, 0, -1} (the scan, ``alrp_core.batch.prepare_batch``).

    Returns:
        Tensor: the loss in [0, 1], a scalar; 0 with zero gradients when there is no positive.
    """
    check_ranking_tensors(logits, targets)
    delta = check_delta(delta)
    with torch.autocast(device_type=logits.device.type, enabled=False):
        batch = prepare_batch(logits, targets, delta=delta)
        num_pos = batch.num_pos
        if num_pos == 0:
            return zero_loss(batch.scores)
        with torch.no_grad():
            ranks = rank_positives(batch)
            fp = ranks.false_positives
            error = fp / ranks.rank
            # Ascending score (tied positives, in reverse index order here, have equal errors).
            order = ranks.descending.flip(0)
            interpolated = torch.cummin(error.index_select(0, order), 0).values
            interpolated = torch.empty_like(error).scatter_(0, order, interpolated)
            counted = fp > 0
            neg_weights = torch.where(counted, interpolated / torch.where(counted, fp, 1.0), 0.0)
            gradient = ranks.negatives.error_driven_gradient(
                neg_weights / num_pos, -interpolated / num_pos
            )
        value = interpolated.mean().to(batch.scores.dtype)
        (value,) = ErrorDrivenLossFunction.apply((gradient,), batch.scores, value)
        return value

"""Rank & Sort Loss (Oksuz, Cam, Akbas, Kalkan, ICCV 2021): ranking positives above negatives
and sorting the positives by their IoU targets, with one error-driven update."""

from typing import Optional, Tuple

import torch
from torch import Tensor

from .autograd import first_order_only, zero_loss
from .batch import prepare_batch
from .checks import check_eps, check_non_negative, check_ranking_tensors
from .intervals import ScoreIntervals
from .missorted import MissortedPairs
from .ranks import NegativeRelations


def rs_loss(
    logits: Tensor, targets: Tensor, ious: Tensor, delta: float = 0.5, eps: float = 1e-10
) -> Tuple[Tensor, Tensor]:
    """Rank & Sort Loss of a batch: its ranking and sorting parts.

    With H(x) = clamp(x / (2 delta) + 1/2, 0, 1) for delta > 0 and the hard step [x >= 0] for
    delta = 0, for every positive i with score s_i and IoU target y_i:

    * rank+(i) = sum over positives k, k = i included, of H(s_k - s_i): the positive counts
      itself with H(0), 1/2 for delta > 0 and 1 for delta = 0 (the definition read literally,
      and what the paper's code computes: its rank+ sums H over every positive, the self
      relation included; aLRP Loss and AP Loss count the self term as 1 instead);
      FP(i) = sum over negatives j of H(s_j - s_i); rank(i) = rank+(i) + FP(i);
    * ranking error l_R(i) = FP(i) / rank(i);
    * sorting error l_S(i) - l_S*(i): l_S(i) = sum_k H(s_k - s_i) (1 - y_k) / rank+(i), l_S*(i)
      the same over the positives with y_k >= y_i (i among them);
    * ``loss_rank = mean_i l_R(i)``, ``loss_sort = mean_i (l_S(i) - l_S*(i))``.

    The gradient is the error-driven update, divided by P: where FP(i) > eps, s_i gets
    ``-l_R(i)`` and every negative j ``H(s_j - s_i) l_R(i) / FP(i)`` (carried by ``loss_rank``);
    with m_ik = [y_k < y_i] H(s_k - s_i), where ``sum_k m_ik > eps``, s_i gets ``-(l_S(i) -
    l_S*(i))`` and every positive k ``m_ik (l_S(i) - l_S*(i)) / sum_k m_ik`` (carried by
    ``loss_sort``), so that a weight on either part scales its own update. Ignored logits get 0.
    The negatives go through the passes of the ranking core; the steps among the positives
    through :func:`rank_sort_errors` (the sums restricted by IoU of ``alrp_core.missorted``), in
    O(P log P) (the backend's kernel where it has one).

    Args:
        logits (Tensor): any shape, M logits of the batch. float16/bfloat16 inputs and calls
            under autocast are computed in float32.
        targets (Tensor): M labels: 1 positive, 0 negative, -1 ignored (int), or bool.
        ious (Tensor): shape (P, ), the IoU target in [0, 1] of the k-th positive in index
            order of ``targets`` (floating point; no gradient reaches it).
        delta (float): half width of the linear part of H, finite and >= 0 (0: the hard step).
            Defaults to 0.5.
        eps (float): the thresholds of the updates above, finite and >= 0. Defaults to 1e-10.

    Raises:
        ValueError: naming the argument and its problem: not a tensor, a dtype, size or device
            that does not fit, a hyperparameter out of range, NaN/Inf, labels out of
            {1, 0, -1}, IoUs outside [0, 1] or not one per positive.

    Returns:
        tuple[Tensor, Tensor]: ``loss_rank`` and ``loss_sort``, scalars (float32, or float64 for
        float64 logits). Both are 0, with zero gradients, when there is no positive.
    """
    check_ranking_tensors(logits, targets, ious=ious)
    delta, eps = check_non_negative('delta', delta), check_eps(eps)
    with torch.autocast(device_type=logits.device.type, enabled=False):
        batch = prepare_batch(logits, targets, delta=delta, ious=ious)
        num_pos = batch.num_pos
        if num_pos == 0:
            zero = zero_loss(batch.scores)
            return zero, zero.clone()
        with torch.no_grad():
            loss_rank, loss_sort, gradient = _rank_and_sort(batch, eps)
        dtype = batch.scores.dtype
        return RankSortFunction.apply(
            gradient, batch.scores, loss_rank.to(dtype), loss_sort.to(dtype)
        )


def _rank_and_sort(batch, eps: float) -> Tuple[Tensor, Tensor, 'RankSortGradient']:
    """The two losses (0-dim, float64) and the gradient of a batch with P >= 1."""
    pos = batch.scores.detach().index_select(0, batch.pos_index)
    ascending = batch.backend.argsort(pos)
    sorted_pos = pos.index_select(0, ascending).to(torch.float64)
    origin = sorted_pos[0]  # the lowest positive
    intervals = ScoreIntervals(sorted_pos - origin, ascending, batch.delta, batch.backend)
    negatives = NegativeRelations(batch, intervals, origin)
    fp = negatives.false_positives.index_select(0, ascending)
    ious = batch.ious.index_select(0, ascending).to(torch.float64)
    # For delta > 0 the intervals' counts of centres below s_i -/+ delta are the windows.
    counts = intervals.centres_below if batch.delta > 0 else None
    errors = batch.backend.rank_sort_errors or rank_sort_errors
    means, per_positive = errors(intervals.centres, ious, fp, batch.delta, eps, counts)
    index_order = torch.empty_like(per_positive).scatter_(1, ascending.expand(3, -1), per_positive)
    gradient = RankSortGradient(
        negatives, intervals.spread(index_order[0]), index_order[1], index_order[2]
    )
    return means[0], means[1], gradient


def rank_sort_errors(
    scores: Tensor,
    ious: Tensor,
    fp: Tensor,
    delta: float,
    eps: float,
    counts: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """Rank & Sort Loss's steps among P >= 1 positives, in torch ops: the reference of the
    backends' kernels (``alrp_core.backends.Backend.rank_sort_errors``).

    Args:
        scores (Tensor): shape (P, ), float64, the positives' shifted scores, ascending.
        ious (Tensor): shape (P, ), float64, their IoU targets, same order.
        fp (Tensor): shape (P, ), float64, their FP(i), same order.
        delta (float): half width of the linear part of H, >= 0 (0: the hard step).
        eps (float): the thresholds of the updates, >= 0.
        counts (Tensor, optional): shape (2, P), int64, the window counts of
            ``alrp_core.missorted.MissortedPairs`` where the caller has them.

    Returns:
        tuple[Tensor, Tensor]: the mean ranking and sorting errors, shape (2, ), and per
        positive (score order) the negatives' weight ``l_R(i) / FP(i)``, the ranking gradient
        ``-l_R(i)`` (both where FP(i) > eps, else 0) and the sorting gradient (its own
        ``-(l_S(i) - l_S*(i))`` where ``sum_k m_ik > eps`` plus what the positives above it
        with a higher IoU spread to it), shape (3, P), each divided by P; float64.
    """
    num_pos = scores.numel()
    pairs = MissortedPairs(scores, ious, delta, counts)
    complement = (1 - ious).unsqueeze(1)
    # Sums of H, then of H (1 - y); each over every positive and over those below y_i.
    (rank_pos, missorted), (current, current_missorted) = torch.stack(
        [pairs.among_all(complement), pairs.among_lower(complement)]
    ).unbind(2)
    ranking_error = fp / (rank_pos + fp)
    # The positives with y_k >= y_i: all but the mis-sorted ones.
    sorting_error = current / rank_pos - (current - current_missorted) / (rank_pos - missorted)
    ranked = fp > eps
    sorted_ = missorted > eps
    neg_weights = torch.where(ranked, ranking_error / fp, 0.0) / num_pos
    rank_grad = torch.where(ranked, -ranking_error, 0.0) / num_pos
    spread = torch.where(sorted_, sorting_error / missorted, 0.0) / num_pos
    sort_grad = torch.where(sorted_, -sorting_error, 0.0) / num_pos + pairs.spread_to_lower(spread)
    means = torch.stack([ranking_error.mean(), sorting_error.mean()])
    return means, torch.stack([neg_weights, rank_grad, sort_grad])


class RankSortGradient:
    """The error-driven gradient of Rank & Sort Loss on every logit, computed when the backward
    pass asks for it, scaled by the incoming gradients of its two parts (one pass, one tensor).

    Args:
        negatives (NegativeRelations): the negatives' side.
        coefficients (Tensor): shape (2, num_bins), float64, the negatives' ranking gradient
            ``A[k] + B[k] * x`` in interval k: A (row 0) and B (row 1).
        rank_grad, sort_grad (Tensor): shape (P, ), float64, the positives' ranking and sorting
            gradients in index order.
    """

    def __init__(
        self,
        negatives: NegativeRelations,
        coefficients: Tensor,
        rank_grad: Tensor,
        sort_grad: Tensor,
    ) -> None:
        self.negatives, self.coefficients = negatives, coefficients
        self.rank_grad, self.sort_grad = rank_grad, sort_grad

    def __call__(self, rank_scale: Optional[Tensor], sort_scale: Optional[Tensor]) -> Tensor:
        """The gradient for the 0-dim incoming gradients of loss_rank and loss_sort (None: 0),
        shape (M, )."""
        zero = self.coefficients.new_zeros(())
        rank_scale = zero if rank_scale is None else rank_scale.detach().to(zero.dtype)
        sort_scale = zero if sort_scale is None else sort_scale.detach().to(zero.dtype)
        offset, slope = self.coefficients * rank_scale
        pos_grad = self.rank_grad * rank_scale + self.sort_grad * sort_scale
        return self.negatives.gradient(offset, slope, pos_grad)


class RankSortFunction(torch.autograd.Function):
    """``RankSortFunction.apply(gradient, scores, loss_rank, loss_sort)`` returns the two values;
    its backward hands the scores ``gradient(grad of loss_rank, grad of loss_sort)``."""

    @staticmethod
    def forward(ctx, gradient: RankSortGradient, scores: Tensor, *values: Tensor):
        ctx.save_for_backward(scores)  # raises in backward if the scores changed in place
        ctx.gradient = gradient
        ctx.set_materialize_grads(False)
        return tuple(value.clone() for value in values)

    @staticmethod
    def backward(ctx, grad_rank: Optional[Tensor], grad_sort: Optional[Tensor]):
        (scores,) = ctx.saved_tensors
        if grad_rank is None and grad_sort is None:
            return None, None, None, None
        grad = first_order_only(ctx.gradient(grad_rank, grad_sort), scores)
        return None, grad, None, None

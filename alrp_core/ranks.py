"""The ranks of the positives of a batch: FP(i), rank+(i) and rank(i) of every positive, and the
negatives' side, which spreads per-positive weights back onto the negatives as the error-driven
gradient.

The positives are sorted once (stable, descending, ties in index order: aLRP's localisation
order; reversed, the ascending one that ``alrp_core.intervals`` works in); the lowest positive is
the origin of the shifted coordinates. The negatives enter through the backend's histogram (FP)
and, in the backward pass, its gradient.
"""

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from .autograd import ErrorDrivenGradient
from .batch import RankingBatch
from .intervals import ScoreIntervals
from .options import timed


class NegativeRelations:
    """FP(i) of every positive against the negatives, and the gradients it spreads back.

    Args:
        batch (RankingBatch): the batch.
        intervals (ScoreIntervals): the positives' intervals.
        origin (Tensor): 0-dim, float64, the lowest positive score.

    Attributes:
        false_positives (Tensor): shape (P, ), float64, FP(i) = sum over negatives j of
            H(s_j - s_i), in index order.
        selection (Any): the binned negatives as the backend's histogram selected them, for its
            gradient.
    """

    def __init__(self, batch: RankingBatch, intervals: ScoreIntervals, origin: Tensor) -> None:
        self.batch, self.intervals, self.origin = batch, intervals, origin
        with timed('histogram'):
            hist, self.selection = batch.backend.histogram(batch, intervals, origin)
        self.false_positives = intervals.relation_sums(hist)

    def error_driven_gradient(self, neg_weights: Tensor, pos_grad: Tensor) -> ErrorDrivenGradient:
        """The error-driven gradient on every logit (computed by the backward pass):
        ``sum_i w_i * H(s_j - s_i)`` on a negative j, ``pos_grad`` on the positives, 0 on
        ignored logits (both per-positive tensors in index order)."""
        return ErrorDrivenGradient(self, self.intervals.spread(neg_weights), pos_grad)

    def gradient(self, offset: Tensor, slope: Tensor, pos_grad: Tensor) -> Tensor:
        """The gradient on every logit, shape (M, ), in the dtype of the scores, from the
        negatives' ``offset[k] + slope[k] * x`` in interval k and the positives' ``pos_grad``."""
        pos_grad = pos_grad.to(torch.float64).contiguous()
        with timed('gradient'):
            return self.batch.backend.gradient(
                self.batch, self.intervals, self.origin, self.selection, offset, slope, pos_grad
            )


@dataclass
class PositiveRanks:
    """The relations of the P positives to the batch, all shape (P, ), float64, in index order.

    Attributes:
        false_positives (Tensor): FP(i) = sum over negatives j of H(s_j - s_i).
        rank_pos (Tensor): rank+(i) = 1 + sum over positives k != i of H(s_k - s_i).
        rank (Tensor): rank(i) = rank+(i) + FP(i).
        weighted (Tensor, optional): sum over positives k != i of w_k * H(s_k - s_i) for the
            weights w given to :func:`rank_positives` (None without).
        descending (Tensor): int64, the positives' positions by descending score, ties in index
            order (reversed: ascending, ties in reverse index order).
        intervals (ScoreIntervals): the positives' intervals.
        negatives (NegativeRelations): the negatives' side (for their gradients).
    """

    false_positives: Tensor
    rank_pos: Tensor
    rank: Tensor
    weighted: Optional[Tensor]
    descending: Tensor
    intervals: ScoreIntervals
    negatives: NegativeRelations


def rank_positives(batch: RankingBatch, weights: Optional[Tensor] = None) -> PositiveRanks:
    """FP(i), rank+(i) and rank(i) of every positive of a batch with P >= 1, and the sums of
    ``weights`` (shape (P, ), in index order) that rank+ sums of ones."""
    pos = batch.scores.detach().index_select(0, batch.pos_index)
    descending = torch.sort(pos, descending=True, stable=True).indices
    ascending = descending.flip(0)
    sorted_pos = pos.index_select(0, ascending).to(torch.float64)
    origin = sorted_pos[0]  # the lowest positive
    intervals = ScoreIntervals(sorted_pos - origin, ascending, batch.delta, batch.backend)
    negatives = NegativeRelations(batch, intervals, origin)
    fp = negatives.false_positives
    ones = torch.ones_like(fp)
    if weights is None:
        rank_pos, weighted = 1 + intervals.among_centres(ones), None
    else:
        rank_pos, weighted = intervals.among_centres(torch.stack([ones, weights]))
        rank_pos = 1 + rank_pos
    return PositiveRanks(fp, rank_pos, rank_pos + fp, weighted, descending, intervals, negatives)

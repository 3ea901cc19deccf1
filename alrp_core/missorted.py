"""Sums over pairs of positives restricted by their IoU targets, in O(P log P) without a P x P
tensor: the sorting half of Rank & Sort Loss.

For positives with scores s (ascending) and IoU targets y, Rank & Sort Loss needs, for every
positive i, sums ``sum_k w_k H(s_k - s_i)`` over the positives k with ``y_k < y_i`` (the
mis-sorted ones: those above i in score with a lower target), and spreads an error ``c_i`` back
to them: ``sum_{i: y_i > y_k} c_i H(s_k - s_i)`` for every k. With H(x) = clamp(x / (2 delta) +
1/2, 0, 1) piecewise linear, a sum over a set of positives k is read from the set's prefix sums
of w and w * s (in score order) at two counts per positive:

* ``lo_i``, the positives with ``s_k <= s_i - delta``, and ``hi_i``, those with ``s_k < s_i +
  delta``: the positives at positions ``>= hi_i`` have H(s_k - s_i) = 1, those in ``[lo_i,
  hi_i)`` the linear part ``(s_k - s_i + delta) / (2 delta)``, the rest 0; seen from the other
  side, ``H(s_k - s_i)`` of a positive i at a position ``< lo_k`` is 1 and in ``[lo_k, hi_k)``
  ``(s_k - s_i + delta) / (2 delta)``. For delta = 0 (the hard step [x >= 0]) the same counts
  hold with no linear part: ``hi_i`` counts ``s_k < s_i``, ``lo_k`` counts ``s_i <= s_k``.

The condition ``y_k < y_i`` is a dominance on the IoU ranks (dense ranks r: equal IoUs, equal
rank; strictly lower IoU, strictly lower rank). It is resolved by a wavelet matrix over the
ranks in score order: level by level from the top bit, a stable partition by one bit of r (a
prefix count of the zero bits gives every new position), so that at each level the positives
that agree with r_i on the bits above form one contiguous run, in score order. A prefix of
``c`` positives in score order maps to a range of that run at every level; the positives of the
range with bit 0 where r_i has bit 1 are exactly those below r_i that differ first at this bit.
So a sum over ``{k among the first c in score order: r_k < r_i}`` is, summed over the levels,
a difference of prefix sums of the level's zero-bit weights at the two ends of the range (and
``r_k > r_k'`` likewise with the one bits). Every level is a few torch ops on P-sized tensors
(cumsums, gathers, one scatter), ``ceil(log2 P)`` levels; no searchsorted, no sort but one of
the window points and one of the IoUs, no host synchronisation. These are the torch ops of
``alrp_core.rank_sort_loss.rank_sort_errors``; the C++ CPU op computes the same sums in sweeps
over the positives in score order with a Fenwick tree over the IoU ranks.

Sums run in float64 on the scores as given (the caller shifts them to its lowest positive), so
that the linear part's moments are differences of prefix sums of bounded terms.
"""

from typing import List, Optional, Tuple

import torch
from torch import Tensor

#: Elements of a CPU op under which torch runs it on the calling thread (at::internal::GRAIN_SIZE).
_GRAIN = 32768


class IoUOrder:
    """The positives in ascending IoU order: their dense ranks (equal IoUs, equal rank; a
    smaller IoU, a smaller rank; ties exact, by ``==``) and, for every positive, the number of
    positives with a strictly smaller IoU.

    Args:
        ious (Tensor): shape (P, ), the IoU targets.

    Attributes:
        ranks (Tensor): shape (P, ), int64, the dense rank of every positive (order of ``ious``).
    """

    def __init__(self, ious: Tensor) -> None:
        self.order = torch.sort(ious, stable=True).indices
        ordered = ious.index_select(0, self.order)
        new = torch.zeros_like(ordered, dtype=torch.int64)
        new[1:] = ordered[1:] != ordered[:-1]
        index = torch.arange(ious.numel(), device=ious.device)
        #: In IoU order: where each run of equal IoUs starts (the count of smaller ones).
        self.run_starts = torch.cummax(torch.where(new.bool(), index, 0), 0).values
        self.ranks = self._back(torch.cumsum(new, 0))

    def _back(self, values: Tensor) -> Tensor:
        """Values in IoU order (shape (P, ...)) back in the order of ``ious``."""
        index = self.order.view(-1, *([1] * (values.dim() - 1))).expand_as(values)
        return torch.empty_like(values).scatter_(0, index, values)

    def below(self, weights: Tensor) -> Tensor:
        """``sum_{k: y_k < y_i} w_k`` for every positive i, shape (P, C), for weights of shape
        (P, C) (order of ``ious``)."""
        prefix = torch.cumsum(weights.index_select(0, self.order), 0)
        prefix = torch.cat([prefix.new_zeros(1, prefix.shape[1]), prefix])
        return self._back(prefix.index_select(0, self.run_starts))


def window_counts(scores: Tensor, delta: float) -> Tuple[Tensor, Tensor]:
    """For ascending ``scores`` s (shape (P, )): ``lo_i``, the number of scores ``<= s_i -
    delta``, and ``hi_i``, of scores ``< s_i + delta`` (int64). One stable sort of the three
    ascending runs s + delta, s, s - delta, which puts equal values in that order, so that the
    scores before a point are those below s_i + delta, or at or below s_i - delta (a
    searchsorted of so few elements costs more in CPU threads than the search)."""
    num = scores.numel()
    points = torch.cat([scores + delta, scores, scores - delta])
    order = torch.sort(points, stable=True).indices
    is_score = (order >= num) & (order < 2 * num)
    scores_before = torch.cumsum(is_score, 0) - is_score.long()
    counts = torch.empty_like(scores_before).scatter_(0, order, scores_before)
    return counts[2 * num :], counts[:num]


class MissortedPairs:
    """The relations among P positives that depend on their IoU targets.

    Args:
        scores (Tensor): shape (P, ), float64, the positives' scores in ascending order
            (shifted: the sums' moments are taken in these coordinates).
        ious (Tensor): shape (P, ), the IoU targets of the same positives, same order.
        delta (float): half width of the linear part of H, >= 0 (0: the hard step).
        counts (Tensor, optional): shape (2, P), int64, lo and hi of :func:`window_counts`, where
            the caller has them (for delta > 0 a count of ``s_k < s_i - delta`` does as well as
            ``<=``: H(-delta) = 0 = the linear part there).

    Every per-positive tensor taken or returned is in the order of ``scores``. The tensors of
    one op hold at most a few P elements (3P indices, P x 3 sums): below torch's grain for
    CPU threads up to P ~ 10 000, so that no op of these steps waits on a second thread.
    """

    def __init__(
        self,
        scores: Tensor,
        ious: Tensor,
        delta: float,
        counts: Optional[Tensor] = None,
    ) -> None:
        self.scores, self.delta = scores, float(delta)
        num = scores.numel()
        self.num = num
        #: lo and hi of every positive, shape (2, P), int64.
        if counts is None:
            counts = torch.stack(window_counts(scores, self.delta))
        self.counts = counts
        self.by_iou = IoUOrder(ious)
        self._build_levels()

    def _build_levels(self) -> None:
        """The wavelet matrix: its levels and ``count_lower``."""
        num, scores, ranks = self.num, self.scores, self.by_iou.ranks
        # The prefix sums of the zero (one) bits of level j in level order are those of the
        # first (last) positions of level j + 1: a range [a, b) of level j maps to [z(a), z(b))
        # among its zero bits and [Z + a - z(a), Z + b - z(b)) among its one bits, z counting
        # the zeros before a position, Z all of them. A positive's run goes on along its own
        # bit; the positives of the range on the other path are below its rank (own bit 1) or
        # above it (own bit 0).
        #: Per level: the order of level j + 1 (score-order indices), the positions of level
        #: j + 1 at which the sums below each positive's rank end (rows start, lo, hi; all
        #: equal where the positive's bit is 0) and those above it (all equal where its bit is
        #: 1), each shape (3, P).
        self.levels: List[Tuple[Tensor, Tensor, Tensor]] = []
        index = torch.arange(num, device=scores.device)
        order = index  # level order: score-order index
        ranges = torch.cat([torch.zeros_like(self.counts[:1]), self.counts])
        zeros_before = torch.zeros(num + 1, dtype=torch.int64, device=scores.device)
        below = torch.zeros_like(ranges)
        for bit in reversed(range(max(num - 1, 0).bit_length())):
            own = ((ranks >> bit) & 1).bool()  # every positive's bit, score order
            ones = own.index_select(0, order)  # in level order
            torch.cumsum(~ones, 0, out=zeros_before[1:])
            total_zeros = zeros_before[num:]
            # The stable partition: zero bits first, in order, then the one bits.
            to = torch.where(ones, total_zeros + index - zeros_before[:-1], zeros_before[:-1])
            order = torch.empty_like(order).scatter_(0, to, order)
            zero_path = zeros_before.index_select(0, ranges.view(-1)).view(3, num)
            one_path = total_zeros + ranges - zero_path
            lower = torch.where(own, zero_path, zero_path[:1])
            upper = torch.where(own, one_path[:1], one_path)
            self.levels.append((order, lower, upper))
            below += lower  # the prefix sum of ones is the position
            ranges = torch.where(own, one_path, zero_path)
        #: The number of positives below each one's rank at positions below lo and hi, and in
        #: all, shape (3, P), float64.
        self.count_lower = torch.cat(
            [below[1:] - below[:1], self.by_iou.below(torch.ones_like(scores).unsqueeze(1)).T]
        ).to(torch.float64)

    def _columns(self, weights: Tensor) -> Tensor:
        """The columns summed: s, w, w * s; shape (P, 1 + 2C) for weights of shape (P, C)."""
        scores = self.scores.unsqueeze(1)
        return torch.cat([scores, weights, weights * scores], 1)

    def _windows(self, counts: Tensor, weights: Tensor, moments: Tensor) -> Tensor:
        """``sum_k v_k H(s_k - s_i)`` for v = 1 and the C weights w of the positives k of a set,
        shape (P, 1 + C), from their counts (shape (3, P)) and the sums of w (shape (3, P, C))
        at the positions below lo_i, hi_i and in all, and the sums of :meth:`_columns` (shape
        (2, P, 1 + 2C)) below lo_i and hi_i."""
        width = weights.shape[2]
        weights = torch.cat([counts.unsqueeze(2), weights], 2)
        above = weights[2] - weights[1]
        if self.delta == 0:
            return above
        moments = torch.cat([moments[..., :1], moments[..., 1 + width :]], 2)
        inside, inside_moments = weights[1] - weights[0], moments[1] - moments[0]
        offset = (self.delta - self.scores).unsqueeze(1)
        return above + (inside * offset + inside_moments) / (2 * self.delta)

    def _level_sums(self, columns: Tensor, which: int) -> Tensor:
        """Sums of ``columns`` (shape (P, n)) over the positives below lo_i and hi_i in score
        order whose rank is below each positive's (``which`` 1) or above it (2), shape (2, P,
        n): over the ranges of every level."""
        width, num = columns.shape[1], self.num
        prefix = columns.new_zeros(num + 1, width)
        # The three rows at once where that stays below the grain, else one by one.
        rows = 3 if 3 * num * width <= _GRAIN else 1
        sums = [columns.new_zeros(rows * num, width) for _ in range(0, 3, rows)]
        for level in self.levels:
            torch.cumsum(columns.index_select(0, level[0]), 0, out=prefix[1:])
            for r, group in zip(range(0, 3, rows), sums):
                group += prefix.index_select(0, level[which][r : r + rows].reshape(-1))
        start, lo, hi = (row for group in sums for row in group.view(rows, num, width))
        return torch.stack([lo - start, hi - start])

    def among_all(self, weights: Tensor) -> Tensor:
        """``sum_k v_k H(s_k - s_i)`` over all positives k (k = i included) for v = 1 and the
        weights w (shape (P, C)) of the positives: shape (P, 1 + C), float64."""
        columns = self._columns(weights)
        prefix = torch.cat([columns.new_zeros(1, columns.shape[1]), torch.cumsum(columns, 0)])
        at = torch.stack([prefix.index_select(0, count) for count in self.counts])
        width = weights.shape[1]
        total = prefix[-1:, 1 : 1 + width].expand(self.num, -1)
        counts = torch.cat([self.counts, torch.full_like(self.counts[:1], self.num)])
        sums = torch.cat([at[..., 1 : 1 + width], total.unsqueeze(0)])
        return self._windows(counts.to(torch.float64), sums, at)

    def among_lower(self, weights: Tensor) -> Tensor:
        """``sum_{k: y_k < y_i} v_k H(s_k - s_i)`` for v = 1 and the weights w (shape (P, C)) of
        the positives: shape (P, 1 + C), float64."""
        width = weights.shape[1]
        at = self._level_sums(self._columns(weights), 1)
        sums = torch.cat([at[..., 1 : 1 + width], self.by_iou.below(weights).unsqueeze(0)])
        return self._windows(self.count_lower, sums, at)

    def spread_to_lower(self, errors: Tensor) -> Tensor:
        """``sum_{i: y_i > y_k} c_i H(s_k - s_i)`` for every positive k, shape (P, ), for
        ``errors`` c of shape (P, ), float64."""
        at_lo, at_hi = self._level_sums(torch.stack([errors, errors * self.scores], 1), 2)
        if self.delta == 0:
            return at_lo[:, 0]
        inside = at_hi - at_lo
        return at_lo[:, 0] + (inside[:, 0] * (self.scores + self.delta) - inside[:, 1]) / (
            2 * self.delta
        )

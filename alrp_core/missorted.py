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
the window points and one of the IoUs, no host synchronisation.

Sums run in float64 on the scores as given (the caller shifts them to its lowest positive), so
that the linear part's moments are differences of prefix sums of bounded terms.
"""

from typing import List, Tuple

import torch
from torch import Tensor


def dense_ranks(values: Tensor) -> Tensor:
    """Rank of every value among the distinct values, int64: equal values, equal rank; a
    smaller value, a smaller rank (exact: ties by ``==``)."""
    ordered, order = torch.sort(values)
    new = torch.zeros_like(ordered, dtype=torch.int64)
    new[1:] = ordered[1:] != ordered[:-1]
    return torch.empty_like(new).scatter_(0, order, torch.cumsum(new, 0))


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

    Every per-positive tensor taken or returned is in the order of ``scores``.
    """

    def __init__(self, scores: Tensor, ious: Tensor, delta: float) -> None:
        self.scores, self.delta = scores, float(delta)
        num = scores.numel()
        self.num = num
        lo, hi = window_counts(scores, self.delta)
        #: lo, hi and P for every positive, shape (3, P), int64.
        self.counts = torch.stack([lo, hi, torch.full_like(lo, num)])
        ranks = dense_ranks(ious)
        # The prefix sums of the zero (one) bits of level j in level order are those of the
        # first (last) positions of level j + 1: a range [a, b) of level j maps to [z(a), z(b))
        # among its zero bits and [Z + a - z(a), Z + b - z(b)) among its one bits, z counting
        # the zeros before a position, Z all of them. A positive's run goes on along its own
        # bit; the positives of the range on the other path are below its rank (own bit 1) or
        # above it (own bit 0).
        #: Per level: the order of level j + 1 (score-order indices), the positions of level
        #: j + 1 at which the sums below each positive's rank end (start, lo, hi, end; shape
        #: (4, P); all equal where the positive's bit is 0) and those above it (start, lo,
        #: hi; shape (3, P); all equal where its bit is 1).
        self.levels: List[Tuple[Tensor, Tensor, Tensor]] = []
        index = torch.arange(num, device=scores.device)
        order, held = index, ranks  # level order: score-order index, rank
        ranges = torch.cat([torch.zeros_like(lo).unsqueeze(0), self.counts])
        zeros_before = torch.zeros(num + 1, dtype=torch.int64, device=scores.device)
        below = torch.zeros_like(ranges)
        for bit in reversed(range(max(num - 1, 0).bit_length())):
            ones = ((held >> bit) & 1).bool()
            torch.cumsum(~ones, 0, out=zeros_before[1:])
            total_zeros = zeros_before[num:]
            # The stable partition: zero bits first, in order, then the one bits.
            to = torch.where(ones, total_zeros + index - zeros_before[:-1], zeros_before[:-1])
            order = torch.empty_like(order).scatter_(0, to, order)
            held = torch.empty_like(held).scatter_(0, to, held)
            own = ((ranks >> bit) & 1).bool()
            zero_path = zeros_before.index_select(0, ranges.view(-1)).view(4, num)
            one_path = total_zeros + ranges - zero_path
            lower = torch.where(own, zero_path, zero_path[:1])
            upper = torch.where(own, one_path[:1], one_path[:3])
            self.levels.append((order, lower, upper))
            below += lower  # the prefix of ones of a level order is its length
            ranges = torch.where(own, one_path, zero_path)
        #: The number of positives below each one's rank at positions below lo, hi and end.
        self.count_lower = (below[1:] - below[:1]).to(torch.float64)

    def _columns(self, weights: Tensor) -> Tensor:
        """The columns summed: s, w, w * s; shape (P, 1 + 2C) for weights of shape (P, C)."""
        scores = self.scores.unsqueeze(1)
        return torch.cat([scores, weights, weights * scores], 1)

    def _windows(self, counts: Tensor, at: Tensor) -> Tensor:
        """``sum_k v_k H(s_k - s_i)`` for v = 1 and the C weights w of the positives k of a set,
        shape (P, 1 + C), from their counts (shape (3, P)) and sums of :meth:`_columns` (shape
        (3, P, 1 + 2C)) at the positions below lo_i, hi_i and end."""
        width = (at.shape[2] - 1) // 2
        weights = torch.cat([counts.unsqueeze(2), at[..., 1 : 1 + width]], 2)
        above = weights[2] - weights[1]
        if self.delta == 0:
            return above
        moments = torch.cat([at[:2, :, :1], at[:2, :, 1 + width :]], 2)
        inside, inside_moments = weights[1] - weights[0], moments[1] - moments[0]
        offset = (self.delta - self.scores).unsqueeze(1)
        return above + (inside * offset + inside_moments) / (2 * self.delta)

    def _prefix(self, columns: Tensor, order: Tensor, out: Tensor) -> Tensor:
        """Prefix sums of ``columns`` taken in ``order``, written to ``out[1:]`` (``out[0]`` is
        0): shape (P + 1, columns)."""
        torch.cumsum(columns.index_select(0, order), 0, out=out[1:])
        return out

    def among_all(self, weights: Tensor) -> Tensor:
        """``sum_k v_k H(s_k - s_i)`` over all positives k (k = i included) for v = 1 and the
        weights w (shape (P, C)) of the positives: shape (P, 1 + C), float64."""
        columns = self._columns(weights)
        prefix = torch.cat([columns.new_zeros(1, columns.shape[1]), torch.cumsum(columns, 0)])
        at = prefix.index_select(0, self.counts.view(-1)).view(3, self.num, -1)
        return self._windows(self.counts.to(torch.float64), at)

    def among_lower(self, weights: Tensor) -> Tensor:
        """``sum_{k: y_k < y_i} v_k H(s_k - s_i)`` for v = 1 and the weights w (shape (P, C)) of
        the positives: shape (P, 1 + C), float64."""
        columns = self._columns(weights)
        prefix = columns.new_zeros(self.num + 1, columns.shape[1])
        sums = columns.new_zeros(4 * self.num, columns.shape[1])
        for order, lower, _ in self.levels:
            sums += self._prefix(columns, order, prefix).index_select(0, lower.view(-1))
        sums = sums.view(4, self.num, -1)
        return self._windows(self.count_lower, sums[1:] - sums[:1])

    def spread_to_lower(self, errors: Tensor) -> Tensor:
        """``sum_{i: y_i > y_k} c_i H(s_k - s_i)`` for every positive k, shape (P, ), for
        ``errors`` c of shape (P, ), float64."""
        columns = torch.stack([errors, errors * self.scores], 1)
        prefix = columns.new_zeros(self.num + 1, 2)
        sums = columns.new_zeros(3 * self.num, 2)
        for order, _, upper in self.levels:
            sums += self._prefix(columns, order, prefix).index_select(0, upper.view(-1))
        sums = sums.view(3, self.num, 2)
        at_lo, at_hi = sums[1:] - sums[:1]
        if self.delta == 0:
            return at_lo[:, 0]
        inside = at_hi - at_lo
        return at_lo[:, 0] + (inside[:, 0] * (self.scores + self.delta) - inside[:, 1]) / (
            2 * self.delta
        )

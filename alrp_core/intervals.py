"""The score intervals of the P positives: the geometry both ranking losses share.

Both losses rank every positive logit against every other logit of the batch through the
smoothed step function H(x) = clamp(x / (2 * delta) + 0.5, 0, 1). H is 0 below -delta, 1 above
delta and linear between, so the 2P points ``s_i - delta`` and ``s_i + delta`` of the P positive
logits cut the score axis into 2P + 1 intervals. Inside one interval every score relates to every
positive in the same way (H = 0, H = 1 or H linear), which gives:

* ``sum_j v_j * H(x_j - s_i)`` for every positive i (the false-positive count FP(i), the positive
  rank, error-weighted ranks) from per-interval sums of v and v * x: a difference of prefix sums
  (:meth:`ScoreIntervals.relation_sums`, :meth:`ScoreIntervals.among_centres`);
* ``sum_i w_i * H(x - s_i)`` for any score x in interval k (the gradient of a negative, spread
  from the positives' weights) as ``A[k] + B[k] * x`` with A and B prefix sums of per-positive
  weights (:meth:`ScoreIntervals.spread`).

For delta = 0, H is the hard step [x >= 0] (Rank & Sort Loss allows it): both points of a
positive coincide, a score equal to s_i lies at or above them, and the sums above keep only
their parts without the linear window.

Interval 0 lies below ``min_i s_i - delta``: a negative there has H = 0 against every positive
and a zero gradient. Sums run in float64 in coordinates shifted to the lowest positive, so window
sums are differences of prefix sums of bounded terms.

The P-sized steps (a few hundred small ops, whose dispatch is most of their cost) work in the
positives' ascending order, in which the centres c_i, lo_i = c_i - delta and hi_i = c_i + delta
all ascend. One stable sort of the three ascending runs (lo, hi, centres) gives the boundaries
and, through its inverse permutation, every count: k_lo(i) and k_hi(i), the boundaries <= lo_i
and <= hi_i (a prefix count of boundaries taken at the end of each run of equal values), and the
centres < lo_i and < hi_i (a prefix count of centres, which the stable sort puts after equal
boundaries). As k_lo, k_hi and the centres ascend with i, every sum over positives by interval is
a prefix sum in that order, read at a count: FP(i) from the negatives' histogram at k_lo and
k_hi; rank+ and the error-weighted ranks (together) from the centres' prefix sums at the centres
below lo_i and hi_i; the spread A, B from the positives' prefix sums at the number of k_lo (k_hi)
<= k. These steps use sorts, prefix sums, gathers and integer scatters only (no searchsorted on
these few elements, whose CPU threads cost more than the search; no bincount, nonzero or float
atomics: no synchronisation on CUDA). The C++ op finds the boundaries and counts in one walk
over the three runs instead (:func:`window_geometry` is its reference).

The kernels find a score's interval in constant time (the Triton kernels from
:meth:`ScoreIntervals.grid`; the C++ op from a grid of its own over the scores in their dtype,
whose boundaries are each one's lowest score that reaches it): a uniform grid over the span of
the boundaries holds, per cell, the number of boundaries in the cells below, and a step or two
within the cell finish it (a binary search where a cell holds many boundaries).
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

from .backends import Backend, stable_argsort

#: Grid cells per interval boundary of the Triton kernels' constant-time interval lookup (the
#: C++ op's kGridCellsPerBound is its own).
GRID_CELLS_PER_BOUND = 4


def bin_counts(idx: Tensor, num_bins: int) -> Tensor:
    """``out[k] = number of idx == k`` for idx in [0, num_bins), int64: integer adds (exact in any
    order; bincount would synchronise on CUDA to size its output)."""
    return torch.zeros(num_bins, dtype=torch.int64, device=idx.device).scatter_add_(
        0, idx, torch.ones_like(idx)
    )


def take_last(values: Tensor, index: Tensor) -> Tensor:
    """``values.index_select(-1, index)`` for ``index`` of shape (n, ), a row at a time: on a
    CPU, index_select along the last dimension of a tensor of several rows costs about twice
    as much as the rows' own (each on one thread for the P-sized tensors here)."""
    rows = values.reshape(-1, values.shape[-1])
    taken = torch.stack([row.index_select(0, index) for row in rows])
    return taken.view(values.shape[:-1] + index.shape)


def window_geometry(sorted_centres: Tensor, delta: float) -> Tuple[Tensor, Tensor, Tensor]:
    """The boundaries of the positives' windows and the counts of :class:`ScoreIntervals`, from
    their ascending shifted centres c (shape (P, ), float64): the 2P boundaries ``c_i -/+
    delta`` in ascending order (float64); the number of boundaries ``<= lo_i``, then ``<=
    hi_i``, shape (2P, ); the number of centres ``< lo_i`` (row 0) and ``< hi_i`` (row 1),
    shape (2, P) (both int64). The torch ops: one stable sort of three ascending runs."""
    num_pos = sorted_centres.numel()
    # Rows lo, hi, centres: three ascending runs, which one stable sort merges.
    points = torch.stack([sorted_centres - delta, sorted_centres + delta, sorted_centres])
    order = stable_argsort(points.view(-1))
    values = points.view(-1).index_select(0, order)
    is_bound = order < 2 * num_pos
    bounds_so_far = torch.cumsum(is_bound, 0)
    # The boundaries <= a value: bounds_so_far at the end of its run of equal values (the last
    # value, the highest centre + delta, differs from the first, -delta, unless all are equal:
    # delta = 0 and tied positives, where every value has all 2P at or below it).
    run_end = values != values.roll(-1)
    at_or_below = torch.where(run_end, bounds_so_far, 2 * num_pos).flip(0)
    at_or_below = torch.cummin(at_or_below, 0).values.flip(0)
    # The centres before a position: at equal values they come after the boundaries (stable
    # sort, centres last), so for a boundary these are the centres below it.
    centres_before = torch.arange(3 * num_pos, device=order.device) - bounds_so_far + is_bound
    by_point = order.new_empty(3, 3 * num_pos).scatter_(
        1, order.expand(3, -1), torch.stack([at_or_below, centres_before, bounds_so_far - 1])
    )
    bound_counts, below, bound_rank = by_point[:, : 2 * num_pos]
    bounds = values.new_empty(2 * num_pos).scatter_(0, bound_rank, points[:2].reshape(-1))
    return bounds, bound_counts, below.view(2, num_pos)


class ScoreIntervals:
    """The 2P + 1 score intervals cut by the positives' points ``s_i -/+ delta``.

    Args:
        sorted_centres (Tensor): shape (P, ), float64, positive logits in shifted coordinates in
            ascending order (the lowest is 0, so the lowest boundary is ``-delta``).
        ascending (Tensor): shape (P, ), int64, the positives' positions in index order:
            ``sorted_centres[j]`` is the centre of positive ``ascending[j]``.
        delta (float): half width of the linear part of H; 0 for the hard step H(x) = [x >= 0]
            (then lo_i = hi_i = c_i, and a score equal to c_i lies at or above both).
        backend (Backend, optional): the backend whose kernels of :func:`window_geometry`,
            :meth:`relation_sums` and :meth:`spread` (``alrp_core.backends.Backend``'s
            ``window_geometry``, ``relation_sums``, ``spread``) stand in for the torch ops here
            where it has them; None: the torch ops.

    Interval indices run over 0 .. 2P; index 2P + 1 is a dummy bin that is always empty. The
    per-positive tensors that the methods take and return are in index order; inside, they
    work in ascending order, where the boundaries ``lo_i = c_i - delta`` and ``hi_i = c_i +
    delta`` ascend too, so that every sum over positives by interval is a prefix sum.

    Attributes:
        bounds (Tensor): shape (2P, ), float64, the boundaries in ascending order.
        k_lo, k_hi (Tensor): shape (P, ), int64, in ascending order: the number of boundaries
            ``<= lo_i`` and ``<= hi_i``; a score x lies at or above lo_i iff its interval is
            ``>= k_lo[i]`` (lo_i is a boundary).
        centres_below (Tensor): shape (2, P), int64, in ascending order: the number of centres
            ``< lo_i`` (row 0) and ``< hi_i`` (row 1).
    """

    def __init__(
        self,
        sorted_centres: Tensor,
        ascending: Tensor,
        delta: float,
        backend: Optional[Backend] = None,
    ) -> None:
        self.delta = float(delta)
        #: H(0), the relation of a positive to itself: 1/2, or 1 for the hard step.
        self.self_term = 1.0 if self.delta == 0 else 0.5
        self.ascending = ascending
        self.centres = sorted_centres
        num_pos = sorted_centres.numel()
        self.dummy = 2 * num_pos + 1
        self.num_bins = 2 * num_pos + 2
        self.lo = sorted_centres - self.delta
        self.kernels = backend
        geometry = getattr(backend, 'window_geometry', None) or window_geometry
        self.bounds, bound_counts, self.centres_below = geometry(sorted_centres, self.delta)
        self.k_lo, self.k_hi = bound_counts.view(2, num_pos)
        self._window = bound_counts  # k_lo then k_hi

    def _ascending(self, values: Tensor) -> Tensor:
        """Per-positive values (shape (..., P)) from index order into ascending order, float64."""
        return take_last(values.to(torch.float64), self.ascending)

    def _index_order(self, values: Tensor) -> Tensor:
        """Per-positive values (shape (..., P)) from ascending order into index order."""
        return torch.empty_like(values).scatter_(-1, self.ascending.expand_as(values), values)

    def grid(self) -> Tuple[Tensor, Tensor]:
        """The Triton kernels' constant-time lookup: ``cells`` equal cells over [bounds[0],
        bounds[-1]]; a shifted score x >= bounds[0] is in cell ``c = int((x - bounds[0]) *
        inv_width)`` (clamped to ``cells``), computed alike for the boundaries and the scores, so
        that ``table[c] <= interval(x) <= table[c + 1]``, where ``table[c]`` counts the
        boundaries in cells below c. Returns ``inv_width`` (shape (1, ), float64) and ``table``
        (shape (cells + 2, ), int32)."""
        n = self.bounds.numel()
        cells = GRID_CELLS_PER_BOUND * n
        first = self.bounds[:1]
        # The boundaries span 0 only for delta = 0 with all positives tied: any width will do.
        span = self.bounds[-1:] - first
        inv_width = cells / torch.where(span > 0, span, torch.ones_like(span))
        cell = ((self.bounds - first) * inv_width).to(torch.int64).clamp_(0, cells)
        # A boundary in cell c counts for table[c + 1] and above.
        table = torch.cumsum(bin_counts(cell + 1, cells + 2), 0, dtype=torch.int32)
        return inv_width, table

    def locate(self, x: Tensor) -> Tensor:
        """Interval index (int64) of every score of ``x`` (float64, shifted)."""
        return torch.searchsorted(self.bounds, x, right=True)

    def relation_sums(self, hist: Tensor) -> Tensor:
        """``sum_j v_j * H(x_j - s_i)`` for every positive i, shape (P, ), from a histogram of
        shape (2, num_bins): per-interval sums of v and v * x."""
        kernel = getattr(self.kernels, 'relation_sums', None)
        if kernel is not None:
            return kernel(hist.contiguous(), self.ascending, self.lo, self._window, self.delta)
        # Only the inner intervals 1 .. 2P - 1 enter a linear window: prefix sums over the
        # intervals 1 .. k - 1 leave out interval 0, whose scores may be arbitrarily far away,
        # and the dummy bin (and never read the moment of interval 2P).
        prefix = torch.cumsum(torch.cat([hist.new_zeros(2, 2), hist[:, 1 : self.dummy]], 1), 1)
        return self._index_order(self._window_sums(prefix, self._window))

    def _window_sums(self, prefix: Tensor, window: Tensor) -> Tensor:
        """relation_sums in ascending order, shape (..., P), from ``prefix`` (shape (2, ...,
        n)): the sums of v (row 0) and v * x (row 1) of the scores below a point, indexed by
        ``window``, which holds that index for every lo_i and then every hi_i; ``prefix[0, ...,
        -1]`` is the sum of v of every score at or above lo_0 (moments of the outer intervals
        left out)."""
        at_lo, at_hi = take_last(prefix, window).unflatten(-1, (2, -1)).unbind(-2)
        above = prefix[0, ..., -1:] - at_hi[0]
        if self.delta == 0:  # the hard step: no linear part (and lo_i = hi_i)
            return above
        inside, moment = at_hi - at_lo
        return above + (moment - self.lo * inside) / (2 * self.delta)

    def _prefix_sums(self, weights: Tensor, points: Tensor) -> Tensor:
        """Sums of w and w * point over the first n positives in ascending order, for n in 0 ..
        P, shape (2, ..., P + 1), float64 (``weights`` (shape (..., P)) and ``points`` in
        ascending order)."""
        terms = torch.cumsum(torch.stack([weights, weights * points]), -1)
        return torch.cat([terms.new_zeros(terms.shape[:-1] + (1,)), terms], -1)

    def among_centres(self, weights: Tensor) -> Tensor:
        """``sum_{k != i} v_k * H(c_k - c_i)`` over the centres themselves, for every i, for
        weights v of shape (..., P) (several sets at once), float64."""
        weights = self._ascending(weights)
        prefix = self._prefix_sums(weights, self.centres)
        sums = self._window_sums(prefix, self.centres_below.view(-1))
        return self._index_order(sums - self.self_term * weights)

    def spread(self, w: Tensor) -> Tensor:
        """A (row 0) and B (row 1), shape (2, num_bins), such that ``sum_i w_i * H(x - s_i) =
        A[k] + B[k] * x`` for every score x in interval k (A = B = 0 in interval 0 and the
        dummy bin)."""
        num_bins = self.num_bins
        kernel = getattr(self.kernels, 'spread', None)
        if kernel is not None:
            weights = w.to(torch.float64).contiguous()
            return kernel(weights, self.ascending, self.lo, self._window, num_bins, self.delta)
        prefix = self._prefix_sums(self._ascending(w), self.lo)
        # ends[0, k] (ends[1, k]): the positives with k_lo (k_hi) <= k, the first ones in
        # ascending order.
        ends = bin_counts(torch.cat([self.k_lo, self.k_hi + num_bins]), 2 * num_bins)
        ends = torch.cumsum(ends.view(2, num_bins), 1)
        # Rows lo side, hi side; columns weights, moments.
        lo_side, hi_side = take_last(prefix, ends.view(-1)).view(2, 2, num_bins).unbind(1)
        if self.delta == 0:  # the hard step: H(x - s_i) = 1 from hi_i = s_i on
            coefficients = torch.stack([hi_side[0], torch.zeros_like(hi_side[0])])
        else:
            inside = (lo_side - hi_side) / (2 * self.delta)
            coefficients = torch.stack([hi_side[0] - inside[1], inside[0]])
        coefficients[:, self.dummy] = 0
        return coefficients

"""The bucketed ranking core shared by aLRP Loss and AP Loss.

Both losses rank every positive logit against every other logit of the batch through the
smoothed step function H(x) = clamp(x / (2 * delta) + 0.5, 0, 1). H is 0 below -delta, 1 above
delta and linear between, so the 2P points ``s_i - delta`` and ``s_i + delta`` of the P positive
logits cut the score axis into 2P + 1 intervals. Inside one interval every score relates to every
positive in the same way (H = 0, H = 1 or H linear), which gives:

* ``sum_j v_j * H(x_j - s_i)`` for every positive i (the false-positive count FP(i), the positive
  rank, error-weighted ranks) from per-interval sums of v and v * x: a difference of prefix sums;
* ``sum_i w_i * H(x - s_i)`` for any score x in interval k (the gradient of a negative, spread
  from the positives' weights) as ``A[k] + B[k] * x`` with A and B prefix sums of per-positive
  weights.

Locating the M scores among the 2P sorted boundaries is one ``searchsorted``: O(M log P) time,
no sort of the M logits and no P x M tensor. Sums run in float64 in coordinates shifted to the
lowest positive, so window sums are differences of prefix sums of bounded terms.
"""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor

#: Logits per chunk when streaming over the M logits (bounds the temporaries on CPU).
CPU_CHUNK = 1 << 20
CUDA_CHUNK = 1 << 26


def bin_sums(idx: Tensor, values: Tensor, num_bins: int) -> Tensor:
    """``out[k] = sum of values[idx == k]``, shape (num_bins, ), float64."""
    out = values.new_zeros(num_bins, dtype=torch.float64)
    return out.index_add_(0, idx, values.to(torch.float64))


class ScoreIntervals:
    """The 2P + 1 score intervals cut by the positives' points ``s_i -/+ delta``.

    Args:
        centres (Tensor): shape (P, ), float64, positive logits in shifted coordinates.
        delta (float): half width of the linear part of H.

    Interval indices run over 0 .. 2P; index 2P + 1 is a dummy bin for scores that take no part
    (positives and ignored logits when the negatives are binned).
    """

    def __init__(self, centres: Tensor, delta: float) -> None:
        self.delta = float(delta)
        self.centres = centres
        self.lo = centres - self.delta
        self.hi = centres + self.delta
        self.bounds = torch.sort(torch.cat([self.lo, self.hi])).values
        num_pos = centres.numel()
        self.dummy = 2 * num_pos + 1
        self.num_bins = 2 * num_pos + 2
        # A score x lies at or above lo_i iff at least k_lo(i) boundaries are <= x (lo_i is one).
        self.k_lo = torch.searchsorted(self.bounds, self.lo, right=True)
        self.k_hi = torch.searchsorted(self.bounds, self.hi, right=True)

    def locate(self, x: Tensor, excluded: Optional[Tensor] = None,
               out: Optional[Tensor] = None) -> Tensor:
        """Interval index (int32) of every score of ``x``; ``excluded`` ones go to the dummy
        bin. Written into ``out`` if given."""
        idx = torch.searchsorted(self.bounds, x, right=True, out_int32=True, out=out)
        if excluded is not None:
            idx.masked_fill_(excluded, self.dummy)
        return idx

    def histogram(self, idx: Tensor, x: Tensor, weights: Optional[Tensor] = None) -> Tensor:
        """Per-interval sums of v and of v * x, shape (2, num_bins), float64 (v = 1 if no
        ``weights``)."""
        if weights is None:
            weights = x.new_ones(()).expand_as(x)
            moments = x
        else:
            moments = x * weights
        return torch.stack([bin_sums(idx, weights, self.num_bins),
                            bin_sums(idx, moments, self.num_bins)])

    def relation_sums(self, hist: Tensor) -> Tensor:
        """``sum_j v_j * H(x_j - s_i)`` for every positive i, shape (P, ), from a histogram."""
        weight, moment = hist.clone().unbind(0)
        weight[self.dummy] = 0
        # Only the inner intervals 1 .. 2P - 1 enter a linear window: drop the outer moments,
        # whose scores may be arbitrarily far away, before taking prefix sums.
        moment[0] = 0
        moment[self.dummy - 1:] = 0
        zero = weight.new_zeros(1)
        wc = torch.cat([zero, torch.cumsum(weight, 0)])
        mc = torch.cat([zero, torch.cumsum(moment, 0)])
        above = wc[-1] - wc[self.k_hi]
        inside = wc[self.k_hi] - wc[self.k_lo]
        linear = (mc[self.k_hi] - mc[self.k_lo]) - self.lo * inside
        return above + linear / (2 * self.delta)

    def among_centres(self, weights: Tensor) -> Tensor:
        """``sum_{k != i} v_k * H(c_k - c_i)`` over the centres themselves, for every i."""
        idx = self.locate(self.centres)
        sums = self.relation_sums(self.histogram(idx, self.centres, weights))
        return sums - 0.5 * weights  # H(0) = 1/2 is the self term

    def spread(self, w: Tensor) -> Tuple[Tensor, Tensor]:
        """A, B of shape (num_bins, ) such that ``sum_i w_i * H(x - s_i) = A[k] + B[k] * x``
        for every score x in interval k (0 in the dummy bin)."""
        n = self.num_bins

        def at_or_below(index: Tensor, value: Tensor) -> Tensor:
            return torch.cumsum(bin_sums(index, value, n), 0)

        full = at_or_below(self.k_hi, w)
        slope = (at_or_below(self.k_lo, w) - full) / (2 * self.delta)
        offset = full - (at_or_below(self.k_lo, w * self.lo) -
                         at_or_below(self.k_hi, w * self.lo)) / (2 * self.delta)
        offset[self.dummy] = 0
        slope[self.dummy] = 0
        return offset, slope


@dataclass
class RankingBatch:
    """A validated batch of flattened logits.

    Attributes:
        scores (Tensor): shape (M, ), float32 (float64 for float64 input), differentiable.
        not_negative (Tensor): shape (M, ), bool, True on positives and ignored logits.
        pos_index (Tensor): shape (P, ), int64, positions of the positives in index order.
        loc_errors (Tensor, optional): shape (P, ), the positives' localisation errors.
    """
    scores: Tensor
    not_negative: Tensor
    pos_index: Tensor
    loc_errors: Optional[Tensor]

    @property
    def num_pos(self) -> int:
        return self.pos_index.numel()


def _check_tensor(name: str, value, kind: str) -> None:
    if not isinstance(value, Tensor):
        raise ValueError(f'{name} must be a torch.Tensor, got {type(value).__name__}')
    ok = {'float': value.is_floating_point(),
          'label': value.dtype == torch.bool or not (value.is_floating_point() or
                                                      value.is_complex())}[kind]
    if not ok:
        want = 'a floating-point' if kind == 'float' else 'an integer or bool'
        raise ValueError(f'{name} must be {want} tensor, got dtype {value.dtype}')


def prepare_batch(logits: Tensor, targets: Tensor,
                  loc_errors: Optional[Tensor] = None) -> RankingBatch:
    """Validate and flatten the inputs of a ranking loss with one host synchronisation.

    Args:
        logits (Tensor): any shape, M elements, floating point.
        targets (Tensor): M elements: 1 positive, 0 negative, -1 ignored (int), or bool.
        loc_errors (Tensor, optional): shape (P, ), non-negative, one per positive in index
            order of ``targets``.

    Raises:
        ValueError: naming the problem (dtype, length, device, NaN/Inf, label or error range).
    """
    _check_tensor('logits', logits, 'float')
    _check_tensor('targets', targets, 'label')
    if targets.numel() != logits.numel():
        raise ValueError(f'targets has {targets.numel()} elements (shape '
                         f'{tuple(targets.shape)}) but logits has {logits.numel()} (shape '
                         f'{tuple(logits.shape)})')
    if targets.device != logits.device:
        raise ValueError(f'targets is on {targets.device} but logits on {logits.device}')
    if loc_errors is not None:
        _check_tensor('loc_errors', loc_errors, 'float')
        if loc_errors.device != logits.device:
            raise ValueError(f'loc_errors is on {loc_errors.device} but logits on '
                             f'{logits.device}')
        if loc_errors.dim() > 1:
            raise ValueError('loc_errors must be one-dimensional (one error per positive), '
                             f'got shape {tuple(loc_errors.shape)}')

    work = torch.float64 if logits.dtype == torch.float64 else torch.float32
    scores = logits.reshape(-1).to(work)
    labels = targets.reshape(-1)
    if labels.dtype == torch.bool:
        positive = not_negative = labels
    else:
        positive, not_negative = labels == 1, labels != 0
    # min and max propagate NaN and show Inf: one reduction pass per tensor, no temporaries.
    checks = {'count': positive.sum()}
    if scores.numel():
        checks['logits'] = torch.aminmax(scores)
        if labels.dtype != torch.bool:
            checks['labels'] = torch.aminmax(labels)
    errors = None
    if loc_errors is not None:
        errors = loc_errors.reshape(-1).to(work)
        if errors.numel():
            checks['loc_errors'] = torch.aminmax(errors)
    keys = [(name, len(v) if isinstance(v, tuple) else 1) for name, v in checks.items()]
    flat = torch.stack([t.to(torch.float64) for v in checks.values()
                        for t in (v if isinstance(v, tuple) else (v, ))])
    flat = flat.tolist()  # the one host synchronisation
    found = {}
    for name, size in keys:
        found[name], flat = flat[:size], flat[size:]
    num_pos = int(found['count'][0])
    low, high = found.get('logits', (0.0, 0.0))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError('NaN or Inf in logits')
    low, high = found.get('labels', (0, 0))
    if low < -1 or high > 1:
        raise ValueError(f'labels outside {{1, 0, -1}} in targets (found {low:g} to {high:g})')
    low, high = found.get('loc_errors', (0.0, 0.0))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError('NaN or Inf in loc_errors')
    if low < 0:
        raise ValueError(f'negative values in loc_errors (min {low:g}); localisation errors '
                         'must be >= 0')
    if errors is not None and errors.numel() != num_pos:
        raise ValueError(f'loc_errors has {errors.numel()} elements but targets has '
                         f'{num_pos} positives (one error per positive is needed)')
    if hasattr(torch, 'nonzero_static'):
        pos_index = torch.nonzero_static(positive, size=num_pos).squeeze(1)
    else:  # pragma: no cover - older torch
        pos_index = torch.nonzero(positive).squeeze(1)
    return RankingBatch(scores, not_negative, pos_index, errors)


class NegativeRelations:
    """FP(i) of every positive against the negatives, and the gradients it spreads back.

    Streams over the M logits in chunks; keeps one int32 interval index per logit between the
    two passes.
    """

    def __init__(self, batch: RankingBatch, intervals: ScoreIntervals, origin: Tensor) -> None:
        self.batch, self.intervals, self.origin = batch, intervals, origin
        scores = batch.scores.detach()
        self.chunk = CUDA_CHUNK if scores.is_cuda else CPU_CHUNK
        self.index = torch.empty(scores.numel(), dtype=torch.int32, device=scores.device)
        hist = scores.new_zeros((2, intervals.num_bins), dtype=torch.float64)
        for sl, x in self._chunks():
            idx = intervals.locate(x, batch.not_negative[sl], out=self.index[sl])
            hist += intervals.histogram(idx, x)
        #: FP(i) = sum over negatives j of H(s_j - s_i), shape (P, ), float64.
        self.false_positives = intervals.relation_sums(hist)

    def _chunks(self):
        scores = self.batch.scores.detach()
        for start in range(0, scores.numel(), self.chunk):
            sl = slice(start, start + self.chunk)
            yield sl, scores[sl].to(torch.float64, copy=True).sub_(self.origin)

    def gradient(self, neg_weights: Tensor, pos_grad: Tensor) -> Tensor:
        """The gradient on every logit, shape (M, ): ``sum_i w_i * H(s_j - s_i)`` on a negative
        j, ``pos_grad`` on the positives, 0 on ignored logits."""
        offset, slope = self.intervals.spread(neg_weights)
        scores = self.batch.scores
        grad = torch.empty_like(scores, dtype=scores.dtype).detach()
        for sl, x in self._chunks():
            idx = self.index[sl]
            x.mul_(torch.index_select(slope, 0, idx)).add_(torch.index_select(offset, 0, idx))
            grad[sl] = x
        grad[self.batch.pos_index] = pos_grad.to(grad.dtype)
        return grad


@dataclass
class PositiveRanks:
    """The relations of the P positives to the batch, all shape (P, ), float64.

    Attributes:
        false_positives (Tensor): FP(i) = sum over negatives j of H(s_j - s_i).
        rank_pos (Tensor): rank+(i) = 1 + sum over positives k != i of H(s_k - s_i).
        rank (Tensor): rank(i) = rank+(i) + FP(i).
        intervals (ScoreIntervals): the positives' intervals (for error-weighted ranks).
        negatives (NegativeRelations): the negatives' side (for their gradients).
    """
    false_positives: Tensor
    rank_pos: Tensor
    rank: Tensor
    intervals: ScoreIntervals
    negatives: NegativeRelations


def rank_positives(batch: RankingBatch, delta: float) -> PositiveRanks:
    """FP(i), rank+(i) and rank(i) of every positive of a batch with P >= 1."""
    if not delta > 0:
        raise ValueError(f'delta must be positive, got {delta}')
    pos = batch.scores.detach()[batch.pos_index].to(torch.float64)
    origin = pos.min()
    intervals = ScoreIntervals(pos - origin, delta)
    negatives = NegativeRelations(batch, intervals, origin)
    fp = negatives.false_positives
    rank_pos = 1 + intervals.among_centres(torch.ones_like(fp))
    return PositiveRanks(fp, rank_pos, rank_pos + fp, intervals, negatives)


class ErrorDrivenValue(torch.autograd.Function):
    """Returns ``value``; its backward hands ``grad`` (the error-driven update of a ranking loss
    with respect to ``scores``, not the autograd derivative of ``value``) to ``scores``."""

    @staticmethod
    def forward(ctx, scores: Tensor, value: Tensor, grad: Tensor) -> Tensor:
        ctx.save_for_backward(grad)
        return value.clone()

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        grad, = ctx.saved_tensors
        return grad * grad_output.to(grad.dtype), None, None


def zero_loss(*tensors: Tensor) -> Tensor:
    """A zero that backpropagates zero gradients to ``tensors`` (no positive in the batch)."""
    return sum(t.sum() * 0 for t in tensors)

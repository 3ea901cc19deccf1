"""The torch-op backend: the reference of the kernels and the fallback wherever they are missing.

The scan reduces with torch ops (one ``aminmax`` of the scores and of the labels, a sum of the
positives). The histogram and the gradient stream over chunks of ``torch_chunk`` logits (bounded
temporaries): the binned negatives of a chunk are compacted, their intervals found by
``searchsorted`` over the boundaries, and on a CPU added with ``index_add_`` (deterministic
there); on CUDA the histogram comes from a sort and prefix sums (:func:`sorted_histogram`: no
atomic adds), and the compaction needs each chunk's count of binned negatives, which the scan
computes so that it reaches the host with the one synchronisation.
"""

import math
from typing import Iterator, List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from ..options import RankingOptions
from . import Backend, Scan, ScanResult

_TORCH_VERSION = tuple(int(v) for v in torch.__version__.split('+')[0].split('.')[:2])
#: nonzero_static has a CUDA kernel from torch 2.6 on (CPU from 2.1).
_NONZERO_STATIC_CUDA = _TORCH_VERSION >= (2, 6)


class TorchScanState(NamedTuple):
    """What the torch-op scan hands to the later passes.

    Attributes:
        chunk (int): logits per chunk of the passes.
        relevant_counts (list[int]): on CUDA, per chunk, the negatives to bin (the compaction
            needs the count); empty on a CPU.
    """

    chunk: int
    relevant_counts: List[int]


class TorchOps(Backend):
    """The three passes in torch ops."""

    name = 'torch'

    def scan(self, scores: Tensor, labels: Tensor, delta: float, options: RankingOptions) -> Scan:
        """Device-side stats [finite, label min, label max, P, relevant negatives per CUDA
        chunk]."""
        positive = positive_mask(labels)
        parts = [positive.sum().to(torch.float64).reshape(1)]
        if scores.numel():
            low, high = torch.aminmax(scores)
            finite = torch.isfinite(low) & torch.isfinite(high)
            label_range = torch.stack(
                torch.aminmax(labels.to(torch.int8) if labels.dtype == torch.bool else labels)
            )
        else:
            finite = torch.ones((), dtype=torch.bool, device=scores.device)
            label_range = scores.new_zeros(2)
        parts = [finite.to(torch.float64).reshape(1), label_range.to(torch.float64)] + parts
        chunk = options.chunk(scores.is_cuda)
        if scores.is_cuda:
            # Compaction on CUDA needs the counts of the negatives to bin, per chunk.
            origin = torch.where(positive, scores, scores.new_full((), math.inf)).min()
            origin = origin.to(torch.float64)
            for start in range(0, scores.numel(), chunk):
                sl = slice(start, start + chunk)
                parts.append(
                    binned_mask(scores[sl], labels[sl], origin, delta, options.filter_negatives)
                    .sum()
                    .to(torch.float64)
                    .reshape(1)
                )

        def decode(values: List[float]) -> ScanResult:
            finite, low, high, num_pos = values[:4]
            num_pos = int(num_pos)
            state = TorchScanState(chunk, [int(v) for v in values[4:]])
            return ScanResult(bool(finite), low, high, num_pos, compact(positive, num_pos), state)

        return Scan(torch.cat(parts), decode)

    def histogram(self, batch, intervals, origin: Tensor) -> Tuple[Tensor, None]:
        hist = origin.new_zeros((2, intervals.num_bins))
        for _, x in binned_chunks(batch, intervals.delta, origin):
            if x.is_cuda:
                hist += sorted_histogram(x, intervals.bounds, intervals.num_bins)
            else:  # index_add_ is deterministic on CPU
                k = intervals.locate(x)
                hist[0].index_add_(0, k, torch.ones_like(x))
                hist[1].index_add_(0, k, x)
        return hist, None

    def gradient(
        self,
        batch,
        intervals,
        origin: Tensor,
        selection: None,
        offset: Tensor,
        slope: Tensor,
        pos_grad: Tensor,
    ) -> Tensor:
        grad = torch.zeros_like(batch.scores.detach())
        for index, x in binned_chunks(batch, intervals.delta, origin):
            k = intervals.locate(x)
            grad[index] = x.mul_(slope[k]).add_(offset[k]).to(grad.dtype)
        grad[batch.pos_index] = pos_grad.to(grad.dtype)
        return grad


def positive_mask(labels: Tensor) -> Tensor:
    return labels if labels.dtype == torch.bool else labels == 1


def negative_mask(labels: Tensor) -> Tensor:
    return ~labels if labels.dtype == torch.bool else labels == 0


def binned_mask(
    scores: Tensor, labels: Tensor, origin: Tensor, delta: float, filter_negatives: bool
) -> Tensor:
    """The negatives the torch-op passes bin: all, or those at or above the lowest boundary."""
    mask = negative_mask(labels)
    if filter_negatives:
        mask &= (scores.to(torch.float64) - origin) >= -delta
    return mask


def binned_chunks(batch, delta: float, origin: Tensor) -> Iterator[Tuple[Tensor, Tensor]]:
    """(indices, shifted float64 scores) of the binned negatives of a batch, chunk by chunk."""
    scores = batch.scores.detach()
    chunk, relevant_counts = batch.scan.state
    for c, start in enumerate(range(0, scores.numel(), chunk)):
        sl = slice(start, start + chunk)
        mask = binned_mask(scores[sl], batch.labels[sl], origin, delta, batch.filter_negatives)
        count = relevant_counts[c] if scores.is_cuda else None
        index = compact(mask, count)
        yield start + index, scores[sl][index].to(torch.float64) - origin


def compact(mask: Tensor, count: Optional[int] = None) -> Tensor:
    """Ascending int64 indices of the True entries of a 1-D mask. On CUDA ``count``, their number
    (known from the host synchronisation), is needed: torch < 2.6 has no CUDA nonzero_static, and
    nonzero would synchronise again."""
    if mask.device.type == 'cpu':
        return torch.nonzero(mask).squeeze(1)
    if count is None:
        raise ValueError('compact() on CUDA needs the count of True entries')
    if _NONZERO_STATIC_CUDA:
        return torch.nonzero_static(mask, size=count).squeeze(1)
    return compact_by_cumsum(mask, count)


def compact_by_cumsum(mask: Tensor, count: int) -> Tensor:
    """:func:`compact` from a prefix count and a scatter (ops every CUDA torch has)."""
    slot = torch.cumsum(mask, 0)
    slot = torch.where(mask, slot - 1, torch.full_like(slot, count))
    out = torch.empty(count + 1, dtype=torch.int64, device=mask.device)
    out.scatter_(0, slot, torch.arange(mask.numel(), device=mask.device))
    return out[:count]


def sorted_histogram(x: Tensor, bounds: Tensor, num_bins: int) -> Tensor:
    """Per-interval count and sum of the scores x (float64, shifted), shape (2, num_bins), from a
    sort and prefix sums (deterministic; no atomic adds on CUDA). The moments of the outer
    intervals, which no window uses, are left 0."""
    xs = torch.sort(x).values
    # ends[k]: the number of scores in intervals 0 .. k (below bounds[k]); the last, all.
    ends = torch.cat(
        [torch.searchsorted(xs, bounds), bounds.new_full((1,), xs.numel(), dtype=torch.int64)]
    )
    inner = torch.where((xs >= bounds[0]) & (xs < bounds[-1]), xs, torch.zeros_like(xs))
    moments = torch.cat([xs.new_zeros(1), torch.cumsum(inner, 0)])[ends]
    zero = xs.new_zeros(1)
    hist = torch.stack(
        [torch.diff(ends.to(torch.float64), prepend=zero), torch.diff(moments, prepend=zero)]
    )
    return torch.cat([hist, hist.new_zeros(2, num_bins - hist.shape[1])], 1)

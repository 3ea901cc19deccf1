"""The bucketed ranking core shared by aLRP Loss and AP Loss (torch only: no mmdet, mmcv or
mmengine import, so that it runs and is tested on its own).

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

Interval 0 lies below ``min_i s_i - delta``: a negative there has H = 0 against every positive
and a zero gradient. Late in training nearly every negative is there, so the passes over the M
logits skip such negatives (``FILTER_NEGATIVES``) and bin only the relevant ones.

Per call there are three passes over the M logits and one host synchronisation:

1. *scan*: validity checks (NaN/Inf, label range), the positives' count and indices; their values
   reach the host together, which is the one synchronisation;
2. *histogram*: per-interval count and sum of the shifted scores of the relevant negatives, from
   which FP(i) follows, and the selection of the binned negatives for the gradient;
3. *gradient*, run by the backward pass (so the gradient is written once, already scaled by the
   incoming gradient): ``A[k] + B[k] * x`` on the relevant negatives, 0 elsewhere.

Each pass has kernels (``BACKEND``): a C++ CPU op (``ranking_cpu.cpp``, built by ``setup.py``), a
Triton kernel for CUDA (``ranking_triton.py``; 'auto' takes it where ``CUDA_AUTO`` says so) and
torch ops, the reference and fallback. The kernels find a score's interval in
constant time: a uniform grid over the span of the boundaries holds, per cell, the number of
boundaries in the cells below, and a step or two within the cell finish it (a binary search
where a cell holds many boundaries). The scan leaves one key byte per logit: 0 positive, 1
ignored, and for a negative 2 + a coarse level of its score (8 levels per unit, clamped to
[-16, 15.75]; never lower for a higher score), so the later passes never read the labels again.
The C++ op's histogram reads the score of a negative only where its key reaches the key of the
lowest boundary, skips a whole chunk whose largest key does not, and hands the gradient pass,
per chunk, the offsets and intervals of the binned negatives (where more than a quarter of the
keys of a chunk's first eighth reach that key: every logit's interval): late in training it reads
about a byte per logit, and the gradient is a zero fill and a few stores. The scan has a
hand-written AVX2 path (float32 scores, chosen at run time where the CPU has it) that reads every
score and label once. Triton's reads every score and stores every logit's interval (two
bytes). The torch ops use ``searchsorted``. Nothing adds float64 atomically into a few histogram
bins: the CPU op sums per chunk, Triton adds integers (counts, fixed-point moments) into 64
partial histograms, the CUDA torch ops sort; so the results are deterministic and alike on CPU
and CUDA. Sums run in float64 in coordinates shifted to the lowest positive, so window sums are
differences of prefix sums of bounded terms; the scores stay in their own dtype.

The P-sized steps between the passes (a few hundred small ops, whose dispatch is most of their
cost) work in the positives' ascending order: one stable sort of the positive logits (descending,
ties in index order: aLRP's localisation order; reversed, the ascending one), in which the
centres c_i, lo_i = c_i - delta and hi_i = c_i + delta all ascend. One stable sort of the three
ascending runs (lo, hi, centres) then gives the boundaries and, through its inverse permutation,
every count: k_lo(i) and k_hi(i), the boundaries <= lo_i and <= hi_i (a prefix count of
boundaries taken at the end of each run of equal values), and the centres < lo_i and < hi_i (a
prefix count of centres, which the stable sort puts after equal boundaries). As k_lo, k_hi and
the centres ascend with i, every sum over positives by interval is a prefix sum in that order,
read at a count: FP(i) from the negatives' histogram at k_lo and k_hi; rank+ and the
error-weighted ranks (together) from the centres' prefix sums at the centres below lo_i and
hi_i; the spread A, B from the positives' prefix sums at the number of k_lo (k_hi) <= k. The
P-sized steps use sorts, prefix sums, gathers and integer scatters only (no searchsorted on
these few elements, whose CPU threads cost more than the search; no bincount, nonzero or float
atomics: no synchronisation on CUDA). One autograd node carries both parts of aLRP Loss: the
error-driven update of the logits and the localisation part's gradient, computed with the
forward pass.
"""

import functools
import importlib
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor

from .checks import first_order_only

#: Logits per chunk of the torch-op path (bounds its temporaries).
CPU_CHUNK = 1 << 20
CUDA_CHUNK = 1 << 24
#: 'auto' (the C++ op on CPU where built, ``CUDA_AUTO`` on CUDA, torch ops otherwise), 'cpp',
#: 'triton' or 'torch'. The environment variable ALRP_CORE_BACKEND sets it.
BACKEND = os.environ.get('ALRP_CORE_BACKEND', 'auto')
#: The kernels 'auto' takes on CUDA: the torch ops, whose semantics the CPU tests pin, until
#: ``make gpu-check`` (tools/gpu_check.py, docs/gpu_check.md) has shown on a GPU that the Triton
#: kernels equal them and are faster; its report's verdict names the value to set here. The
#: Triton kernels, tested in Triton's interpreter only, stay one setting away:
#: ALRP_CORE_BACKEND=triton.
CUDA_AUTO = 'torch'
#: Skip the negatives below every positive's window (they count for nothing).
FILTER_NEGATIVES = True
#: Grid cells per interval boundary of the constant-time interval lookup of the kernels.
GRID_CELLS_PER_BOUND = 4

#: Set to a dict to collect the wall seconds of each pass over the M logits ('scan',
#: 'histogram', 'gradient'; summed over calls) and of the whole call ('total'). CPU timing only
#: (no CUDA synchronisation is added).
PASS_SECONDS: Optional[dict] = None

_TORCH_VERSION = tuple(int(v) for v in torch.__version__.split('+')[0].split('.')[:2])
#: nonzero_static has a CUDA kernel from torch 2.6 on (CPU from 2.1).
_NONZERO_STATIC_CUDA = _TORCH_VERSION >= (2, 6)


@contextmanager
def timed(name: str):
    """Adds the wall seconds of the block to ``PASS_SECONDS[name]`` when profiling."""
    if PASS_SECONDS is None:
        yield
        return
    start = time.perf_counter()
    yield
    PASS_SECONDS[name] = PASS_SECONDS.get(name, 0.0) + time.perf_counter() - start


@functools.lru_cache(maxsize=None)
def _import_sibling(name: str):
    """A module beside this one, or None (loaded as a package module or as a top-level one;
    looked up once)."""
    try:
        if __package__:
            return importlib.import_module(f'{__package__}.{name}')
        return importlib.import_module(name)
    except ImportError:
        return None


def bin_counts(idx: Tensor, num_bins: int) -> Tensor:
    """``out[k] = number of idx == k`` for idx in [0, num_bins), int64: integer adds (exact in any
    order; bincount would synchronise on CUDA to size its output)."""
    return torch.zeros(num_bins, dtype=torch.int64, device=idx.device).scatter_add_(
        0, idx, torch.ones_like(idx)
    )


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


class ScoreIntervals:
    """The 2P + 1 score intervals cut by the positives' points ``s_i -/+ delta``.

    Args:
        sorted_centres (Tensor): shape (P, ), float64, positive logits in shifted coordinates in
            ascending order (the lowest is 0, so the lowest boundary is ``-delta``).
        ascending (Tensor): shape (P, ), int64, the positives' positions in index order:
            ``sorted_centres[j]`` is the centre of positive ``ascending[j]``.
        delta (float): half width of the linear part of H.

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

    def __init__(self, sorted_centres: Tensor, ascending: Tensor, delta: float) -> None:
        self.delta = float(delta)
        self.ascending = ascending
        self.centres = sorted_centres
        num_pos = sorted_centres.numel()
        self.dummy = 2 * num_pos + 1
        self.num_bins = 2 * num_pos + 2
        # Rows lo, hi, centres: three ascending runs, which one stable sort merges.
        points = torch.stack(
            [sorted_centres - self.delta, sorted_centres + self.delta, sorted_centres]
        )
        self.lo = points[0]
        values, order = torch.sort(points.view(-1), stable=True)
        is_bound = order < 2 * num_pos
        bounds_so_far = torch.cumsum(is_bound, 0)
        # The boundaries <= a value: bounds_so_far at the end of its run of equal values (the
        # last value, the highest centre + delta, differs from the first, -delta).
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
        self.k_lo, self.k_hi = bound_counts.view(2, num_pos)
        self._window = bound_counts  # k_lo then k_hi
        self.centres_below = below.view(2, num_pos)
        self.bounds = values.new_empty(2 * num_pos).scatter_(0, bound_rank, points[:2].reshape(-1))

    def _ascending(self, values: Tensor) -> Tensor:
        """Per-positive values (shape (..., P)) from index order into ascending order, float64."""
        return values.to(torch.float64).index_select(-1, self.ascending)

    def _index_order(self, values: Tensor) -> Tensor:
        """Per-positive values (shape (..., P)) from ascending order into index order."""
        return torch.empty_like(values).scatter_(-1, self.ascending.expand_as(values), values)

    def grid(self) -> Tuple[Tensor, Tensor]:
        """The kernels' constant-time lookup: ``cells`` equal cells over [bounds[0], bounds[-1]];
        a shifted score x >= bounds[0] is in cell ``c = int((x - bounds[0]) * inv_width)``
        (clamped to ``cells``), computed alike for the boundaries and the scores, so that
        ``table[c] <= interval(x) <= table[c + 1]``, where ``table[c]`` counts the boundaries in
        cells below c. Returns ``inv_width`` (shape (1, ), float64) and ``table`` (shape
        (cells + 2, ), int32)."""
        n = self.bounds.numel()
        cells = GRID_CELLS_PER_BOUND * n
        first = self.bounds[:1]
        inv_width = cells / (self.bounds[-1:] - first)
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
        at_lo, at_hi = prefix.index_select(-1, window).unflatten(-1, (2, -1)).unbind(-2)
        inside, moment = at_hi - at_lo
        linear = moment - self.lo * inside
        return (prefix[0, ..., -1:] - at_hi[0]) + linear / (2 * self.delta)

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
        return self._index_order(sums - 0.5 * weights)  # H(0) = 1/2 is the self term

    def spread(self, w: Tensor) -> Tensor:
        """A (row 0) and B (row 1), shape (2, num_bins), such that ``sum_i w_i * H(x - s_i) =
        A[k] + B[k] * x`` for every score x in interval k (A = B = 0 in interval 0 and the
        dummy bin)."""
        num_bins = self.num_bins
        prefix = self._prefix_sums(self._ascending(w), self.lo)
        # ends[0, k] (ends[1, k]): the positives with k_lo (k_hi) <= k, the first ones in
        # ascending order.
        ends = bin_counts(torch.cat([self.k_lo, self.k_hi + num_bins]), 2 * num_bins)
        ends = torch.cumsum(ends.view(2, num_bins), 1)
        # Rows lo side, hi side; columns weights, moments.
        lo_side, hi_side = prefix.index_select(-1, ends.view(-1)).view(2, 2, num_bins).unbind(1)
        inside = (lo_side - hi_side) / (2 * self.delta)
        coefficients = torch.stack([hi_side[0] - inside[1], inside[0]])
        coefficients[:, self.dummy] = 0
        return coefficients


@dataclass
class RankingBatch:
    """A validated batch of flattened logits.

    Attributes:
        scores (Tensor): shape (M, ), float32 (float64 for float64 input), differentiable.
        labels (Tensor): shape (M, ), contiguous, the targets' dtype: 1 (True) positive,
            0 (False) negative, -1 ignored.
        pos_index (Tensor): shape (P, ), int64, positions of the positives in index order.
        loc_errors (Tensor, optional): shape (P, ), the positives' localisation errors.
        delta (float): half width of the linear part of H.
        backend (str): the kernels of the passes over the M logits: 'cpp', 'triton' or 'torch'.
        filter_negatives (bool): skip the negatives in interval 0.
        scan_state (tuple, optional): what the kernels' scan hands to their histogram: the key
            bytes, shape (M, ), uint8 (0 positive, 1 ignored, 2 + a coarse level of the score
            for a negative), and for the C++ op each chunk's largest key; None on the torch-op
            path.
        relevant_counts (list[int]): per chunk of CUDA_CHUNK logits, the negatives to bin (the
            torch-op path on CUDA only, where compaction needs the count; else empty).
    """

    scores: Tensor
    labels: Tensor
    pos_index: Tensor
    loc_errors: Optional[Tensor]
    delta: float
    backend: str
    filter_negatives: bool
    scan_state: Optional[Tuple[Tensor, ...]] = None
    relevant_counts: List[int] = field(default_factory=list)

    @property
    def num_pos(self) -> int:
        return self.pos_index.numel()


def _check_tensor(name: str, value, kind: str) -> None:
    if not isinstance(value, Tensor):
        raise ValueError(f'{name} must be a torch.Tensor, got {type(value).__name__}')
    ok = {
        'float': value.is_floating_point(),
        'label': value.dtype == torch.bool or not (value.is_floating_point() or value.is_complex()),
    }[kind]
    if not ok:
        want = 'a floating-point' if kind == 'float' else 'an integer or bool'
        raise ValueError(f'{name} must be {want} tensor, got dtype {value.dtype}')


def available_backends(device: torch.device) -> List[str]:
    """The kernels that can run on ``device``, preferred first; 'torch' is always there."""
    names = []
    if device.type == 'cpu' and _import_sibling('_ranking_cpu') is not None:
        names.append('cpp')
    if (
        (device.type == 'cuda' or os.environ.get('TRITON_INTERPRET') == '1')
        and _import_sibling('ranking_triton') is not None
        and _import_sibling('ranking_triton').AVAILABLE
    ):
        names.append('triton')
    return names + ['torch']


def select_backend(device: torch.device) -> str:
    """``BACKEND`` if it can run on ``device``; 'auto': the C++ op on a CPU, ``CUDA_AUTO`` on
    CUDA, where available, else the torch ops."""
    names = available_backends(device)
    if BACKEND == 'auto':
        preferred = {'cpu': 'cpp', 'cuda': CUDA_AUTO}.get(device.type)
        return preferred if preferred in names else 'torch'
    if BACKEND not in names:
        raise RuntimeError(
            f'ranking core backend {BACKEND!r} is not available on {device} (available: {names})'
        )
    return BACKEND


def prepare_batch(
    logits: Tensor, targets: Tensor, loc_errors: Optional[Tensor] = None, delta: float = 1.0
) -> RankingBatch:
    """Validate and flatten the inputs of a ranking loss with one host synchronisation.

    Args:
        logits (Tensor): any shape, M elements, floating point.
        targets (Tensor): M elements: 1 positive, 0 negative, -1 ignored (int), or bool.
        loc_errors (Tensor, optional): shape (P, ), non-negative, one per positive in index
            order of ``targets``.
        delta (float): half width of the linear part of H, > 0.

    Raises:
        ValueError: naming the problem (dtype, length, device, NaN/Inf, label or error range,
            delta).
    """
    if not delta > 0:
        raise ValueError(f'delta must be positive, got {delta}')
    _check_tensor('logits', logits, 'float')
    _check_tensor('targets', targets, 'label')
    if targets.numel() != logits.numel():
        raise ValueError(
            f'targets has {targets.numel()} elements (shape '
            f'{tuple(targets.shape)}) but logits has {logits.numel()} (shape '
            f'{tuple(logits.shape)})'
        )
    if targets.device != logits.device:
        raise ValueError(f'targets is on {targets.device} but logits on {logits.device}')
    if loc_errors is not None:
        _check_tensor('loc_errors', loc_errors, 'float')
        if loc_errors.device != logits.device:
            raise ValueError(f'loc_errors is on {loc_errors.device} but logits on {logits.device}')
        if loc_errors.dim() > 1:
            raise ValueError(
                'loc_errors must be one-dimensional (one error per positive), '
                f'got shape {tuple(loc_errors.shape)}'
            )

    work = torch.float64 if logits.dtype == torch.float64 else torch.float32
    scores = _flat(logits).to(work).contiguous()
    labels = _flat(targets).contiguous()
    backend = select_backend(scores.device)
    filter_negatives = bool(FILTER_NEGATIVES)
    with timed('scan'):
        stats, find_positives, scan_state = _SCANS[backend](
            scores, labels, float(delta), filter_negatives
        )
    errors = None
    if loc_errors is not None:
        errors = _flat(loc_errors).to(work)
        if errors.numel():
            stats = torch.cat([stats, *errors.reshape(1, -1).aminmax(dim=1)])
    flat = stats.tolist()  # the one host synchronisation
    finite, low, high, num_pos = flat[:4]
    num_pos = int(num_pos)
    if not finite:
        raise ValueError('NaN or Inf in logits')
    if labels.dtype != torch.bool and (low < -1 or high > 1):
        raise ValueError(f'labels outside {{1, 0, -1}} in targets (found {low:g} to {high:g})')
    low, high = flat[-2:] if errors is not None and errors.numel() else (0.0, 0.0)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError('NaN or Inf in loc_errors')
    if low < 0:
        raise ValueError(
            f'negative values in loc_errors (min {low:g}); localisation errors must be >= 0'
        )
    if errors is not None and errors.numel() != num_pos:
        raise ValueError(
            f'loc_errors has {errors.numel()} elements but targets has '
            f'{num_pos} positives (one error per positive is needed)'
        )
    relevant = [
        int(v) for v in flat[4 : len(flat) - (2 if errors is not None and errors.numel() else 0)]
    ]
    return RankingBatch(
        scores,
        labels,
        find_positives(num_pos),
        errors,
        float(delta),
        backend,
        filter_negatives,
        scan_state,
        relevant,
    )


def _flat(tensor: Tensor) -> Tensor:
    """``tensor`` as one dimension: itself where it has one (a view would add an autograd node
    to the backward pass)."""
    return tensor if tensor.dim() == 1 else tensor.reshape(-1)


def _positive_mask(labels: Tensor) -> Tensor:
    return labels if labels.dtype == torch.bool else labels == 1


def _negative_mask(labels: Tensor) -> Tensor:
    return ~labels if labels.dtype == torch.bool else labels == 0


Scan = Tuple[Tensor, Callable[[int], Tensor], Optional[Tuple[Tensor, ...]]]


def _torch_scan(scores: Tensor, labels: Tensor, delta: float, filter_negatives: bool) -> Scan:
    """Device-side stats [finite, label min, label max, P, relevant negatives per CUDA chunk],
    a function of P giving the positives' indices, and no scan state; torch ops."""
    positive = _positive_mask(labels)
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
    if scores.is_cuda:
        # Compaction on CUDA needs the counts of the negatives to bin, per chunk.
        origin = torch.where(positive, scores, scores.new_full((), math.inf)).min()
        origin = origin.to(torch.float64)
        for start in range(0, scores.numel(), CUDA_CHUNK):
            sl = slice(start, start + CUDA_CHUNK)
            parts.append(
                _binned_mask(scores[sl], labels[sl], origin, delta, filter_negatives)
                .sum()
                .to(torch.float64)
                .reshape(1)
            )
    return torch.cat(parts), lambda num_pos: compact(positive, num_pos), None


def _cpp_scan(scores: Tensor, labels: Tensor, delta: float, filter_negatives: bool) -> Scan:
    stats, pos_index, keys, chunk_max = _import_sibling('_ranking_cpu').scan(scores, labels)
    return stats, lambda num_pos: pos_index, (keys, chunk_max)


def _triton_scan(scores: Tensor, labels: Tensor, delta: float, filter_negatives: bool) -> Scan:
    return _import_sibling('ranking_triton').scan(scores, labels)


_SCANS = {'torch': _torch_scan, 'cpp': _cpp_scan, 'triton': _triton_scan}


def _binned_mask(
    scores: Tensor, labels: Tensor, origin: Tensor, delta: float, filter_negatives: bool
) -> Tensor:
    """The negatives the torch-op passes bin: all, or those at or above the lowest boundary."""
    mask = _negative_mask(labels)
    if filter_negatives:
        mask &= (scores.to(torch.float64) - origin) >= -delta
    return mask


class NegativeRelations:
    """FP(i) of every positive against the negatives, and the gradients it spreads back."""

    def __init__(self, batch: RankingBatch, intervals: ScoreIntervals, origin: Tensor) -> None:
        self.batch, self.intervals, self.origin = batch, intervals, origin
        if batch.backend == 'torch':
            with timed('histogram'):
                hist = self._torch_histogram()
        else:
            inv_width, table = intervals.grid()
            #: The binned negatives and their intervals, for the gradient pass (kernels only).
            with timed('histogram'):
                hist, self.selection = self._kernels().histogram(
                    batch.scores.detach(),
                    batch.scan_state,
                    self._scalar(origin),
                    intervals.bounds,
                    self._scalar(inv_width),
                    table,
                    batch.filter_negatives,
                )
        #: FP(i) = sum over negatives j of H(s_j - s_i), shape (P, ), float64.
        self.false_positives = intervals.relation_sums(hist)

    def _kernels(self):
        return _import_sibling('_ranking_cpu' if self.batch.backend == 'cpp' else 'ranking_triton')

    def _scalar(self, value: Tensor):
        # The C++ op takes floats (CPU reads, no device synchronisation), Triton tensors.
        return float(value) if self.batch.backend == 'cpp' else value

    def _binned_chunks(self):
        """(indices, shifted float64 scores) of the binned negatives, chunk by chunk."""
        scores = self.batch.scores.detach()
        chunk = CUDA_CHUNK if scores.is_cuda else CPU_CHUNK
        for c, start in enumerate(range(0, scores.numel(), chunk)):
            sl = slice(start, start + chunk)
            mask = _binned_mask(
                scores[sl],
                self.batch.labels[sl],
                self.origin,
                self.intervals.delta,
                self.batch.filter_negatives,
            )
            count = self.batch.relevant_counts[c] if scores.is_cuda else None
            index = compact(mask, count)
            yield start + index, scores[sl][index].to(torch.float64) - self.origin

    def _torch_histogram(self) -> Tensor:
        iv = self.intervals
        hist = self.origin.new_zeros((2, iv.num_bins))
        for _, x in self._binned_chunks():
            if x.is_cuda:
                hist += sorted_histogram(x, iv.bounds, iv.num_bins)
            else:  # index_add_ is deterministic on CPU
                k = iv.locate(x)
                hist[0].index_add_(0, k, torch.ones_like(x))
                hist[1].index_add_(0, k, x)
        return hist

    def update(self, neg_weights: Tensor, pos_grad: Tensor) -> 'ErrorDrivenUpdate':
        """The error-driven update on every logit (computed by the backward pass):
        ``sum_i w_i * H(s_j - s_i)`` on a negative j, ``pos_grad`` on the positives, 0 on
        ignored logits (both per-positive tensors in index order)."""
        return ErrorDrivenUpdate(self, self.intervals.spread(neg_weights), pos_grad)

    def gradient(self, offset: Tensor, slope: Tensor, pos_grad: Tensor) -> Tensor:
        """The update on every logit, shape (M, ), in the dtype of the scores."""
        batch = self.batch
        scores = batch.scores.detach()
        pos_grad = pos_grad.to(torch.float64).contiguous()
        with timed('gradient'):
            if batch.backend != 'torch':
                return self._kernels().gradient(
                    scores,
                    self.selection,
                    self._scalar(self.origin),
                    offset,
                    slope,
                    batch.pos_index,
                    pos_grad,
                )
            grad = torch.zeros_like(scores)
            for index, x in self._binned_chunks():
                k = self.intervals.locate(x)
                grad[index] = x.mul_(slope[k]).add_(offset[k]).to(grad.dtype)
            grad[batch.pos_index] = pos_grad.to(grad.dtype)
            return grad


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
    intervals = ScoreIntervals(sorted_pos - origin, ascending, batch.delta)
    negatives = NegativeRelations(batch, intervals, origin)
    fp = negatives.false_positives
    ones = torch.ones_like(fp)
    if weights is None:
        rank_pos, weighted = 1 + intervals.among_centres(ones), None
    else:
        rank_pos, weighted = intervals.among_centres(torch.stack([ones, weights]))
        rank_pos = 1 + rank_pos
    return PositiveRanks(fp, rank_pos, rank_pos + fp, weighted, descending, intervals, negatives)


class ErrorDrivenUpdate:
    """The error-driven update of a ranking loss on every logit, computed when the backward pass
    asks for it (then already scaled by the incoming gradient: one pass, one tensor).

    Args:
        negatives (NegativeRelations): the negatives' side.
        coefficients (Tensor): shape (2, num_bins), float64, the negatives' update ``A[k] + B[k]
            * x`` in interval k: A (row 0) and B (row 1).
        pos_grad (Tensor): shape (P, ), float64, the positives' update in index order.
    """

    def __init__(
        self, negatives: NegativeRelations, coefficients: Tensor, pos_grad: Tensor
    ) -> None:
        self.negatives, self.coefficients, self.pos_grad = negatives, coefficients, pos_grad

    def __call__(self, scale: Tensor) -> Tensor:
        """The update times ``scale`` (a 0-dim tensor), shape (M, )."""
        scale = scale.detach()  # float64 products (a 0-dim tensor does not promote them)
        offset, slope = self.coefficients * scale  # rows of a contiguous tensor: contiguous
        return self.negatives.gradient(offset, slope, self.pos_grad * scale)


class ErrorDrivenValue(torch.autograd.Function):
    """``ErrorDrivenValue.apply(updates, *inputs, *values)`` returns the tuple ``values`` (the
    parts of a ranking loss); its backward hands ``updates[n](gradient of values[n])`` to
    ``inputs[n]``: for the scores the error-driven update of the loss (not the autograd
    derivative of its value), for aLRP's localisation errors their gradient."""

    @staticmethod
    def forward(ctx, updates: Tuple[Callable[[Tensor], Tensor], ...], *tensors: Tensor):
        ctx.save_for_backward(tensors[0])  # raises in backward if the scores changed in place
        ctx.updates = updates
        ctx.set_materialize_grads(False)  # a value that the loss does not use costs nothing
        return tuple(value.clone() for value in tensors[len(updates) :])

    @staticmethod
    def backward(ctx, *grads: Optional[Tensor]):
        (scores,) = ctx.saved_tensors  # the read raises if the scores changed in place
        inputs = tuple(
            None if grad is None else first_order_only(update(grad), scores)
            for update, grad in zip(ctx.updates, grads)
        )
        return (None,) + inputs + (None,) * len(grads)


def zero_loss(*tensors: Tensor) -> Tensor:
    """A zero that backpropagates zero gradients to ``tensors`` (no positive in the batch)."""
    return sum(t.sum() * 0 for t in tensors)

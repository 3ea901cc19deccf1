"""The Triton backend for CUDA: kernels of the three passes (the torch-op backend is the
reference they are tested against, on a CPU through Triton's interpreter, ``TRITON_INTERPRET=1``).

The same three passes and results as the C++ CPU op (``ranking_cpu.cpp``):

* ``scan``: per block, whether a score is NaN/Inf, the label range and the positive count, and
  the C++ op's key byte per logit (0 positive, 1 ignored, 2 + a coarse level of the score for a
  negative); the positives' indices follow once their count is on the host, from a second,
  byte-wide pass;
* ``histogram``: each relevant negative's interval from the uniform-grid table and a bisection
  between ``table[c]`` and ``table[c + 1]`` (a step or none for nearly every score), and the
  per-interval count and moment. Both are integers (the moment in fixed point: the boundaries'
  span in 2^(62 - bits of M) units, so that no sum overflows int64; 2^-37 of the span for
  M = 31e6), added with integer atomics into ``GROUPS`` partial histograms: exact and
  deterministic, and no float64 atomics pile onto a few bins;
* ``gradient``: ``A[k] + B[k] * x`` from each logit's stored interval.

Unlike the C++ op, the histogram reads every score and stores every logit's interval (a dense
selection, two bytes a logit): a GPU reads whole blocks anyway, and a compaction would need a
prefix sum or slots taken in a nondeterministic order.

Only the kernels' API of Triton >= 3.0 is used; ``AVAILABLE`` is False for older Triton (the
CUDA torch-op path runs instead).
"""

import functools
import math
import os
from typing import List, NamedTuple, Tuple

import torch
from torch import Tensor

from ..options import RankingOptions
from . import Backend, Scan, ScanResult

try:
    import triton
    import triton.language as tl

    AVAILABLE = int(triton.__version__.split('.')[0]) >= 3
    constexpr = tl.constexpr
except ImportError:  # pragma: no cover - an environment without triton
    AVAILABLE, constexpr = False, None

BLOCK = 1024
#: Partial histograms the blocks add into (block b into b % GROUPS).
GROUPS = 64
# Key bytes as the C++ op's (ranking_cpu.cpp): kernels may read globals only as constexpr.
POSITIVE, IGNORED, LOWEST_NEGATIVE, HIGHEST_KEY = (
    tl.constexpr(v) if AVAILABLE else v for v in (0, 1, 2, 255)
)
LEVELS_PER_UNIT, LEVEL_OFFSET = (tl.constexpr(v) if AVAILABLE else v for v in (8.0, 130.0))


def _scan_kernel(scores, labels, codes, partial, m, BLOCK: constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    inside = offs < m
    s = tl.load(scores + offs, mask=inside, other=0.0)
    t = tl.load(labels + offs, mask=inside, other=0).to(tl.int64)
    bad = ((s - s) != 0) & inside  # NaN and +-Inf give NaN
    # A negative's key in the score's dtype, as the C++ op's.
    level = s * LEVELS_PER_UNIT + LEVEL_OFFSET
    level = tl.minimum(tl.maximum(level, LOWEST_NEGATIVE), HIGHEST_KEY).to(tl.int32)
    code = tl.where(t == 1, POSITIVE, tl.where(t == 0, level, IGNORED))
    tl.store(codes + offs, code.to(tl.uint8), mask=inside)
    big = 1 << 62
    row = partial + pid * 4
    tl.store(row, tl.max(bad.to(tl.int64), 0))
    tl.store(row + 1, tl.min(tl.where(inside, t, big), 0))
    tl.store(row + 2, tl.max(tl.where(inside, t, -big), 0))
    tl.store(row + 3, tl.sum(((t == 1) & inside).to(tl.int64), 0))


def _positives_kernel(codes, out, counter, m, BLOCK: constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < m
    positive = (tl.load(codes + offs, mask=inside, other=0) == POSITIVE) & inside
    slot = tl.atomic_add(counter + tl.zeros([BLOCK], dtype=tl.int32), 1, mask=positive)
    tl.store(out + slot, offs.to(tl.int64), mask=positive)


def _histogram_kernel(
    scores,
    codes,
    origin_ptr,
    bounds,
    inv_width_ptr,
    table,
    index,
    counts,
    moments,
    m,
    n,
    cells,
    unit,
    SKIP: constexpr,
    STEPS: constexpr,
    BLOCK: constexpr,
    GROUPS: constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    inside = offs < m
    origin = tl.load(origin_ptr)
    inv_width = tl.load(inv_width_ptr)
    first = tl.load(bounds)
    last = tl.load(bounds + n - 1)
    x = tl.load(scores + offs, mask=inside, other=0.0).to(tl.float64) - origin
    negative = (tl.load(codes + offs, mask=inside, other=IGNORED) >= LOWEST_NEGATIVE) & inside
    above = x >= first
    inner_x = tl.minimum(tl.maximum(x, first), last)  # no float-to-int overflow below
    cell = tl.minimum(((inner_x - first) * inv_width).to(tl.int64), cells)
    lo = tl.load(table + cell, mask=negative & above, other=0).to(tl.int64)
    hi = tl.load(table + cell + 1, mask=negative & above, other=0).to(tl.int64)
    # Bisection for the number of boundaries <= x within [lo, hi) (empty for most scores).
    for _ in range(STEPS):
        active = lo < hi
        mid = (lo + hi) // 2
        le = tl.load(bounds + mid, mask=active, other=0.0) <= x
        lo = tl.where(active & le, mid + 1, lo)
        hi = tl.where(active & (~le), mid, hi)
    k = tl.where(x >= last, n, tl.where(above, lo, 0))
    if SKIP:
        binned = negative & above
    else:
        binned = negative
    tl.store(index + offs, tl.where(binned, k, n + 1).to(index.dtype.element_ty), mask=inside)
    row = (pid % GROUPS) * (n + 2)
    tl.atomic_add(counts + row + k, tl.full([BLOCK], 1, tl.int64), mask=binned)
    inner = binned & (k >= 1) & (k < n)
    fixed = ((inner_x - first) * inv_width * unit + 0.5).to(tl.int64)
    tl.atomic_add(moments + row + k, fixed, mask=inner)


def _gradient_kernel(scores, index, origin_ptr, offset, slope, grad, m, bins, BLOCK: constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < m
    origin = tl.load(origin_ptr)
    s = tl.load(scores + offs, mask=inside, other=0.0)
    k = tl.load(index + offs, mask=inside, other=0).to(tl.int64)
    k = tl.where(k < 0, k + 65536, k)  # int16 storage of intervals up to 65535
    k = tl.minimum(k, bins - 1)
    a = tl.load(offset + k, mask=inside, other=0.0)
    b = tl.load(slope + k, mask=inside, other=0.0)
    g = (s.to(tl.float64) - origin) * b + a
    tl.store(grad + offs, g.to(grad.dtype.element_ty), mask=inside)


@functools.lru_cache(maxsize=None)
def _kernels(interpret: bool) -> dict:
    """The jitted kernels; decorated on first use, so that TRITON_INTERPRET set by then counts."""
    return {
        name: triton.jit(fn)
        for name, fn in (
            ('scan', _scan_kernel),
            ('positives', _positives_kernel),
            ('histogram', _histogram_kernel),
            ('gradient', _gradient_kernel),
        )
    }


def _get(name: str):
    return _kernels(os.environ.get('TRITON_INTERPRET') == '1')[name]


def _grid(m: int) -> Tuple[int]:
    return (max(1, triton.cdiv(m, BLOCK)),)


class TritonScanState(NamedTuple):
    """What the Triton scan hands to the histogram.

    Attributes:
        keys (Tensor): shape (M, ), uint8, the key byte of every logit.
    """

    keys: Tensor


class TritonKernels(Backend):
    """The three passes in Triton kernels."""

    name = 'triton'

    def scan(self, scores: Tensor, labels: Tensor, delta: float, options: RankingOptions) -> Scan:
        """Device-side stats [finite, label min, label max, P]; the positives' ascending indices
        follow from the key bytes once P is on the host."""
        m = scores.numel()
        codes = torch.empty(m, dtype=torch.uint8, device=scores.device)
        blocks = _grid(m)[0]
        partial = torch.zeros(blocks, 4, dtype=torch.int64, device=scores.device)
        if m:
            _get('scan')[_grid(m)](
                scores,
                labels.view(torch.uint8) if labels.dtype == torch.bool else labels,
                codes,
                partial,
                m,
                BLOCK=BLOCK,
            )
            stats = torch.stack(
                [
                    1 - partial[:, 0].max(),
                    partial[:, 1].min(),
                    partial[:, 2].max(),
                    partial[:, 3].sum(),
                ]
            ).to(torch.float64)
        else:
            stats = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64, device=scores.device)

        def decode(values: List[float]) -> ScanResult:
            finite, low, high, num_pos = values
            num_pos = int(num_pos)
            pos_index = torch.empty(num_pos, dtype=torch.int64, device=scores.device)
            if num_pos:
                counter = torch.zeros(1, dtype=torch.int32, device=scores.device)
                _get('positives')[_grid(m)](codes, pos_index, counter, m, BLOCK=BLOCK)
                pos_index = torch.sort(pos_index).values  # the atomic slots come in any order
            return ScanResult(bool(finite), low, high, num_pos, pos_index, TritonScanState(codes))

        return Scan(stats, decode)

    def histogram(self, batch, intervals, origin: Tensor) -> Tuple[Tensor, Tensor]:
        """The selection: the interval of every logit, shape (M, ), int16 (read as uint16) or
        int32, n + 1 where it is not binned."""
        inv_width, table = intervals.grid()
        return _histogram(
            batch.scores.detach(),
            batch.scan.state.keys,
            origin,
            intervals.bounds,
            inv_width,
            table,
            batch.filter_negatives,
        )

    def gradient(
        self, batch, intervals, origin: Tensor, selection: Tensor, offset, slope, pos_grad
    ) -> Tensor:
        return _gradient(
            batch.scores.detach(), selection, origin, offset, slope, batch.pos_index, pos_grad
        )


def _histogram(
    scores: Tensor,
    codes: Tensor,
    origin: Tensor,
    bounds: Tensor,
    inv_width: Tensor,
    table: Tensor,
    skip_irrelevant: bool,
) -> Tuple[Tensor, Tensor]:
    """The histogram, shape (2, n + 2), float64, and the interval of every logit."""
    m, n = scores.numel(), bounds.numel()
    cells = table.numel() - 2
    index = torch.empty(
        m, dtype=torch.int16 if n + 1 <= 65535 else torch.int32, device=scores.device
    )
    counts = torch.zeros(GROUPS, n + 2, dtype=torch.int64, device=scores.device)
    moments = torch.zeros_like(counts)
    # Fixed point relative to the grid (the span is on the device only): (x - first) * inv_width
    # is in [0, cells] for the inner intervals; `unit` is a power of two (exact as the float32
    # a kernel's float argument is) with M * cells * unit <= 2^62.
    unit = 2.0 ** (62 - max(m, 1).bit_length() - math.ceil(math.log2(cells)))
    steps = max(1, math.ceil(math.log2(n + 1)))
    if m:
        _get('histogram')[_grid(m)](
            scores,
            codes,
            origin.reshape(1).to(torch.float64),
            bounds,
            inv_width,
            table,
            index,
            counts,
            moments,
            m,
            n,
            cells,
            unit,
            SKIP=bool(skip_irrelevant),
            STEPS=steps,
            BLOCK=BLOCK,
            GROUPS=GROUPS,
        )
    count = counts.sum(0).to(torch.float64)
    moment = moments.sum(0).to(torch.float64) / (inv_width * unit) + bounds[0] * count
    moment[0] = 0
    moment[n:] = 0
    return torch.stack([count, moment]), index


def _gradient(
    scores: Tensor,
    index: Tensor,
    origin: Tensor,
    offset: Tensor,
    slope: Tensor,
    pos_index: Tensor,
    pos_grad: Tensor,
) -> Tensor:
    """The gradient on every logit in the dtype of the scores, from the intervals of
    :func:`_histogram`."""
    m = scores.numel()
    grad = torch.empty_like(scores)
    if m:
        _get('gradient')[_grid(m)](
            scores,
            index,
            origin.reshape(1).to(torch.float64),
            offset,
            slope,
            grad,
            m,
            offset.numel(),
            BLOCK=BLOCK,
        )
    grad[pos_index] = pos_grad.to(grad.dtype)
    return grad

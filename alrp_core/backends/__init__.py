"""The kernels of the ranking core's passes over the M logits: one interface, three backends.

Per call there are three passes over the M logits and one host synchronisation:

1. *scan* (:meth:`Backend.scan`): validity checks (NaN/Inf, label range), the positives' count
   and indices; their values reach the host together, which is the one synchronisation
   (``alrp_core.batch.prepare_batch``);
2. *histogram* (:meth:`Backend.histogram`): per-interval count and sum of the shifted scores of
   the relevant negatives, from which FP(i) follows, and the selection of the binned negatives
   for the gradient;
3. *gradient* (:meth:`Backend.gradient`), run by the backward pass (so the gradient is written
   once, already scaled by the incoming gradient): ``A[k] + B[k] * x`` on the relevant
   negatives, 0 elsewhere, and the positives' own update.

The backends: a C++ CPU op (``cpp``, ``backends/cpp.py`` over ``ranking_cpu.cpp``, built by
``setup.py``), Triton kernels for CUDA (``triton``, ``backends/triton.py``) and torch ops
(``torch``, ``backends/torch_ops.py``), the reference and fallback. 'auto' takes the C++ op on a
CPU where it is built and :data:`CUDA_AUTO` on CUDA. The kernels find a score's interval in
constant time (a uniform grid, ``ScoreIntervals.grid``); the scan leaves one key byte per logit:
0 positive, 1 ignored, and for a negative 2 + a coarse level of its score (8 levels per unit,
clamped to [-16, 15.75]; never lower for a higher score), so the later passes never read the
labels again.
Nothing adds float64 atomically into a few histogram bins: the CPU op sums per chunk, Triton adds
integers (counts, fixed-point moments) into 64 partial histograms, the CUDA torch ops sort; so
the results are deterministic and alike on CPU and CUDA. The scores stay in their own dtype.
"""

import abc
import functools
import importlib
import os
from typing import TYPE_CHECKING, Any, Callable, List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from ..options import RankingOptions, current_options

if TYPE_CHECKING:  # pragma: no cover
    from ..batch import RankingBatch
    from ..intervals import ScoreIntervals

#: The kernels 'auto' takes on CUDA: the torch ops, whose semantics the CPU tests pin, until
#: ``make gpu-check`` (tools/analysis_tools/gpu_check.py, docs/gpu_check.md) has shown on a GPU
#: that the Triton kernels equal them and are faster; its report's verdict names the value to set
#: here. The Triton kernels, tested in Triton's interpreter only, stay one setting away:
#: ALRP_CORE_BACKEND=triton.
CUDA_AUTO = 'torch'


class ScanResult(NamedTuple):
    """What the scan found, on the host after the one synchronisation.

    Attributes:
        finite (bool): no NaN or Inf among the scores.
        label_min, label_max (float): the range of the labels (0 and 1 for bool labels).
        num_pos (int): P, the positives' count.
        pos_index (Tensor): shape (P, ), int64, the positives' positions in index order.
        state (Any): what the backend's histogram reads besides the scores (its own type).
    """

    finite: bool
    label_min: float
    label_max: float
    num_pos: int
    pos_index: Tensor
    state: Any


class Scan(NamedTuple):
    """A scan's result before the host synchronisation.

    Attributes:
        stats (Tensor): shape (n, ), float64, on the scores' device: the values the host needs,
            in the backend's own layout; the batch fetches them together with its other checks.
        decode (Callable): those values, as host floats, to the :class:`ScanResult`.
    """

    stats: Tensor
    decode: Callable[[List[float]], ScanResult]


def stable_argsort(values: Tensor) -> Tensor:
    """The stable ascending order of ``values`` (shape (n, ), finite), int64: the indices of
    ``torch.sort(values, stable=True)`` (-0.0 and 0.0 tie)."""
    return torch.sort(values, stable=True).indices


class Backend(abc.ABC):
    """The three passes over the M logits (see the module's docstring) and kernels of the
    P-sized steps."""

    #: The value of the ``backend`` option that selects these kernels.
    name: str
    #: A kernel of Rank & Sort Loss's steps among the positives
    #: (``alrp_core.rank_sort_loss.rank_sort_errors``, the torch ops it stands for when None):
    #: ``(scores, ious, fp, delta, eps, counts) -> (means, per_positive)``.
    rank_sort_errors: Optional[
        Callable[[Tensor, Tensor, Tensor, float, float, Optional[Tensor]], Tuple[Tensor, Tensor]]
    ] = None
    #: A kernel of the boundaries and counts of the positives' windows, ``(sorted_centres,
    #: delta) -> (bounds, bound_counts, centres_below)``, or None: the torch ops of
    #: ``alrp_core.intervals.window_geometry``.
    window_geometry: Optional[Callable[[Tensor, float], Tuple[Tensor, Tensor, Tensor]]] = None
    #: Kernels of ``alrp_core.intervals.ScoreIntervals.relation_sums`` ``(hist, ascending, lo,
    #: window, delta) -> (P, )`` and ``spread`` ``(weights, ascending, lo, window, num_bins,
    #: delta) -> (2, num_bins)`` (the intervals' ``ascending``, ``lo`` and ``_window``), or
    #: None: their torch ops.
    relation_sums: Optional[Callable[[Tensor, Tensor, Tensor, Tensor, float], Tensor]] = None
    spread: Optional[Callable[[Tensor, Tensor, Tensor, Tensor, int, float], Tensor]] = None
    #: The sort of the positives' scores:
    #: :func:`stable_argsort`'s result, for contiguous float32 or float64 values.
    argsort: Callable[[Tensor], Tensor] = staticmethod(stable_argsort)

    @abc.abstractmethod
    def scan(self, scores: Tensor, labels: Tensor, delta: float, options: RankingOptions) -> Scan:
        """The scan of ``scores`` (shape (M, ), float32 or float64, contiguous) and ``labels``
        (shape (M, ), contiguous: 1 (True) positive, 0 (False) negative, -1 ignored)."""

    @abc.abstractmethod
    def histogram(
        self, batch: 'RankingBatch', intervals: 'ScoreIntervals', origin: Tensor
    ) -> Tuple[Tensor, Any]:
        """Per-interval count (row 0) and sum of ``x = s - origin`` (row 1) of the binned
        negatives, shape (2, intervals.num_bins), float64 (the moments of the outer intervals
        0 and 2P may be left 0: no window reads them), and the selection the gradient reads.
        ``origin``: 0-dim float64, the lowest positive score."""

    @abc.abstractmethod
    def gradient(
        self,
        batch: 'RankingBatch',
        intervals: 'ScoreIntervals',
        origin: Tensor,
        selection: Any,
        offset: Tensor,
        slope: Tensor,
        pos_grad: Tensor,
    ) -> Tensor:
        """The error-driven gradient on every logit, shape (M, ), in the scores' dtype:
        ``offset[k] + slope[k] * x`` on a binned negative in interval k (``offset``, ``slope``:
        shape (num_bins, ), float64, contiguous), ``pos_grad`` (shape (P, ), float64,
        contiguous, index order) on the positives, 0 elsewhere."""


#: The module and class of each backend, loaded on first use.
_MODULES = {
    'cpp': ('cpp', 'CppOp'),
    'triton': ('triton', 'TritonKernels'),
    'torch': ('torch_ops', 'TorchOps'),
}


@functools.lru_cache(maxsize=None)
def load(name: str) -> Optional[Backend]:
    """The backend ``name`` ('cpp', 'triton', 'torch'), or None where it cannot be imported here
    (the C++ op not built, no triton >= 3.0)."""
    module_name, class_name = _MODULES[name]
    try:
        module = importlib.import_module(f'{__name__}.{module_name}')
    except ImportError:
        return None
    if not getattr(module, 'AVAILABLE', True):
        return None
    return getattr(module, class_name)()


def available_backends(device: torch.device) -> List[str]:
    """The kernels that can run on ``device``, preferred first; 'torch' is always there."""
    names = []
    if device.type == 'cpu' and load('cpp') is not None:
        names.append('cpp')
    if (device.type == 'cuda' or os.environ.get('TRITON_INTERPRET') == '1') and load(
        'triton'
    ) is not None:
        names.append('triton')
    return names + ['torch']


def select_backend(device: torch.device, name: Optional[str] = None) -> Backend:
    """The backend ``name`` (default: the ``backend`` option) if it can run on ``device``;
    'auto': the C++ op on a CPU, :data:`CUDA_AUTO` on CUDA, where available, else the torch
    ops. Raises RuntimeError naming a forced backend that cannot run there."""
    name = current_options().backend if name is None else name
    names = available_backends(device)
    if name == 'auto':
        preferred = {'cpu': 'cpp', 'cuda': CUDA_AUTO}.get(device.type)
        name = preferred if preferred in names else 'torch'
    elif name not in names:
        raise RuntimeError(
            f'ranking core backend {name!r} is not available on {device} (available: {names})'
        )
    return load(name)

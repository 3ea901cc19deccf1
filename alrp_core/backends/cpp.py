"""The C++ CPU backend: the op ``alrp_core._ranking_cpu``, built by ``setup.py`` from
``backends/ranking_cpu.cpp`` (its comments describe the kernels).

The op's scan has a hand-written AVX2 path (float32 scores, chosen at run time where the CPU
has it) that reads every score and label once. Its histogram reads the score of a negative only
where its key reaches the key of the lowest boundary, skips a whole chunk whose largest key does
not, and hands the gradient pass, per chunk, the offsets and intervals of the binned negatives
(where more than a quarter of the keys of a chunk's first eighth reach that key: every logit's
interval): late in training it reads about a byte per logit, and the gradient is a zero fill and
a few stores. Sums run per chunk and are combined in order: the results do not depend on the
number of threads.
"""

from typing import List, NamedTuple, Tuple

from torch import Tensor

from .. import _ranking_cpu as op
from ..options import RankingOptions
from . import Backend, Scan, ScanResult


class CppScanState(NamedTuple):
    """What the op's scan hands to its histogram.

    Attributes:
        keys (Tensor): shape (M, ), uint8, the key byte of every logit.
        chunk_max (Tensor): shape (chunks, ), uint8, each chunk's largest key.
    """

    keys: Tensor
    chunk_max: Tensor


class CppOp(Backend):
    """The three passes of the C++ op (``op``, the extension module)."""

    name = 'cpp'
    op = op
    #: Rank & Sort Loss's steps among the positives in one walk and two sweeps with a Fenwick
    #: tree, where the torch ops take a few dozen ops a level of a wavelet matrix.
    rank_sort_errors = staticmethod(op.rank_sort_errors)
    #: The windows' boundaries and counts in one walk over their three ascending runs.
    window_geometry = staticmethod(op.window_geometry)
    #: FP(i) from the histogram and the negatives' gradient coefficients, each one loop over
    #: the positives or the intervals, where the torch ops take a dozen ops.
    relation_sums = staticmethod(op.relation_sums)
    spread = staticmethod(op.spread)
    #: A radix sort, O(P), where torch's sort of a few thousand values costs O(P log P).
    argsort = staticmethod(op.argsort)

    def scan(self, scores: Tensor, labels: Tensor, delta: float, options: RankingOptions) -> Scan:
        """Device-side stats [finite, label min, label max, P]."""
        stats, pos_index, keys, chunk_max = op.scan(scores, labels)

        def decode(values: List[float]) -> ScanResult:
            finite, low, high, num_pos = values
            state = CppScanState(keys, chunk_max)
            return ScanResult(bool(finite), low, high, int(num_pos), pos_index, state)

        return Scan(stats, decode)

    def histogram(self, batch, intervals, origin: Tensor) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
        """The selection: per chunk of ``op.CHUNK`` logits, the count of its binned negatives
        (-1 for a dense chunk), and the entries (offset and interval pairs, or every logit's
        interval)."""
        # The op takes floats (CPU reads, no device synchronisation) and builds its own grid.
        return op.histogram(
            batch.scores.detach(),
            batch.scan.state,
            float(origin),
            intervals.bounds,
            batch.filter_negatives,
        )

    def gradient(
        self, batch, intervals, origin: Tensor, selection, offset, slope, pos_grad
    ) -> Tensor:
        return op.gradient(
            batch.scores.detach(),
            selection,
            float(origin),
            offset,
            slope,
            batch.pos_index,
            pos_grad,
        )

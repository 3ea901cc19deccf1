"""The batch of a ranking loss: its logits and labels flattened, the scan's findings, the
kernels and options it runs with, and the checks that need the scan, with one host
synchronisation.

The scan (the first pass over the M logits, ``alrp_core.backends``) finds NaN/Inf among the
scores, the labels' range and the positives; its values, and the range of the localisation
errors, reach the host together. The negatives below every positive's window (interval 0 of
``alrp_core.intervals``) count for nothing; late in training nearly every negative is there, so
the later passes skip them (``filter_negatives`` of ``alrp_core.options``) and bin only the
relevant ones.
"""

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from .backends import Backend, ScanResult, select_backend
from .options import current_options, timed


@dataclass
class RankingBatch:
    """A validated batch of flattened logits.

    Attributes:
        scores (Tensor): shape (M, ), float32 (float64 for float64 input), differentiable.
        labels (Tensor): shape (M, ), contiguous, the targets' dtype: 1 (True) positive,
            0 (False) negative, -1 ignored.
        loc_errors (Tensor, optional): shape (P, ), the positives' localisation errors.
        delta (float): half width of the linear part of H.
        backend (Backend): the kernels of the passes over the M logits.
        filter_negatives (bool): skip the negatives in interval 0.
        scan (ScanResult): what the scan found: the positives' indices and the backend's state
            for its histogram.
    """

    scores: Tensor
    labels: Tensor
    loc_errors: Optional[Tensor]
    delta: float
    backend: Backend
    filter_negatives: bool
    scan: ScanResult

    @property
    def pos_index(self) -> Tensor:
        """Shape (P, ), int64, positions of the positives in index order."""
        return self.scan.pos_index

    @property
    def num_pos(self) -> int:
        return self.scan.num_pos


def prepare_batch(
    logits: Tensor, targets: Tensor, loc_errors: Optional[Tensor] = None, delta: float = 1.0
) -> RankingBatch:
    """Flatten the inputs of a ranking loss, scan them and check what the scan finds, with one
    host synchronisation; the backend and options are those in force (``alrp_core.options``).

    Args:
        logits (Tensor): any shape, M elements, floating point.
        targets (Tensor): M elements, integer or bool, on the device of ``logits``.
        loc_errors (Tensor, optional): shape (P, ), floating point, on that device.
        delta (float): half width of the linear part of H, > 0.

    The types, dtypes, sizes and devices of the tensors and ``delta`` are checked where they
    enter (``alrp_core.checks.check_ranking_tensors``, ``check_delta``), not here.

    Raises:
        ValueError: naming the problem: NaN/Inf in ``logits`` or ``loc_errors``, labels out of
            {1, 0, -1}, negative localisation errors, or not one error per positive.
    """
    work = torch.float64 if logits.dtype == torch.float64 else torch.float32
    scores = _flat(logits).to(work).contiguous()
    labels = _flat(targets).contiguous()
    options = current_options()
    backend = select_backend(scores.device, options.backend)
    with timed('scan'):
        pending = backend.scan(scores, labels, float(delta), options)
    stats = pending.stats
    errors = None
    if loc_errors is not None:
        errors = _flat(loc_errors).to(work)
        if errors.numel():
            stats = torch.cat([stats, *errors.reshape(1, -1).aminmax(dim=1)])
    flat = stats.tolist()  # the one host synchronisation
    scan = pending.decode(flat[: pending.stats.numel()])
    if not scan.finite:
        raise ValueError('NaN or Inf in logits')
    low, high = scan.label_min, scan.label_max
    if labels.dtype != torch.bool and (low < -1 or high > 1):
        raise ValueError(f'labels outside {{1, 0, -1}} in targets (found {low:g} to {high:g})')
    low, high = flat[-2:] if errors is not None and errors.numel() else (0.0, 0.0)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError('NaN or Inf in loc_errors')
    if low < 0:
        raise ValueError(
            f'negative values in loc_errors (min {low:g}); localisation errors must be >= 0'
        )
    if errors is not None and errors.numel() != scan.num_pos:
        raise ValueError(
            f'loc_errors has {errors.numel()} elements but targets has '
            f'{scan.num_pos} positives (one error per positive is needed)'
        )
    return RankingBatch(
        scores, labels, errors, float(delta), backend, bool(options.filter_negatives), scan
    )


def _flat(tensor: Tensor) -> Tensor:
    """``tensor`` as one dimension: itself where it has one (a view would add an autograd node
    to the backward pass)."""
    return tensor if tensor.dim() == 1 else tensor.reshape(-1)

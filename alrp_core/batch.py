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
        ious (Tensor, optional): shape (P, ), float64, the positives' IoU targets (Rank & Sort
            Loss).
    """

    scores: Tensor
    labels: Tensor
    loc_errors: Optional[Tensor]
    delta: float
    backend: Backend
    filter_negatives: bool
    scan: ScanResult
    ious: Optional[Tensor] = None

    @property
    def pos_index(self) -> Tensor:
        """Shape (P, ), int64, positions of the positives in index order."""
        return self.scan.pos_index

    @property
    def num_pos(self) -> int:
        return self.scan.num_pos


def prepare_batch(
    logits: Tensor,
    targets: Tensor,
    loc_errors: Optional[Tensor] = None,
    delta: float = 1.0,
    ious: Optional[Tensor] = None,
) -> RankingBatch:
    """Flatten the inputs of a ranking loss, scan them and check what the scan finds, with one
    host synchronisation; the backend and options are those in force (``alrp_core.options``).

    Args:
        logits (Tensor): any shape, M elements, floating point.
        targets (Tensor): M elements, integer or bool, on the device of ``logits``.
        loc_errors (Tensor, optional): shape (P, ), floating point, on that device.
        delta (float): half width of the linear part of H, >= 0.
        ious (Tensor, optional): shape (P, ), floating point, on that device.

    The types, dtypes, sizes and devices of the tensors and ``delta`` are checked where they
    enter (``alrp_core.checks.check_ranking_tensors``, ``check_delta``), not here.

    Raises:
        ValueError: naming the problem: NaN/Inf in ``logits``, ``loc_errors`` or ``ious``,
            labels out of {1, 0, -1}, negative localisation errors, IoUs outside [0, 1], or
            not one error (IoU) per positive.
    """
    work = torch.float64 if logits.dtype == torch.float64 else torch.float32
    scores = _flat(logits).to(work).contiguous()
    labels = _flat(targets).contiguous()
    options = current_options()
    backend = select_backend(scores.device, options.backend)
    with timed('scan'):
        pending = backend.scan(scores, labels, float(delta), options)
    stats = [pending.stats]
    # Per-positive tensors: name, values (the IoUs, which take no gradient, in float64: their
    # ties stay ties), and the range their values must lie in.
    per_positive = [
        (name, _flat(values).to(dtype), low, high)
        for name, values, dtype, low, high in (
            ('loc_errors', loc_errors, work, 0.0, math.inf),
            ('ious', ious, torch.float64, 0.0, 1.0),
        )
        if values is not None
    ]
    for _, values, _, _ in per_positive:
        if values.numel():
            stats.append(torch.stack(values.aminmax()).to(pending.stats.dtype))
    flat = torch.cat(stats).tolist()  # the one host synchronisation
    scan = pending.decode(flat[: pending.stats.numel()])
    if not scan.finite:
        raise ValueError('NaN or Inf in logits')
    low, high = scan.label_min, scan.label_max
    if labels.dtype != torch.bool and (low < -1 or high > 1):
        raise ValueError(f'labels outside {{1, 0, -1}} in targets (found {low:g} to {high:g})')
    ranges = iter(flat[pending.stats.numel() :])
    for name, values, low, high in per_positive:
        if values.numel():
            _check_range(name, next(ranges), next(ranges), low, high)
        if values.numel() != scan.num_pos:
            what = 'error' if name == 'loc_errors' else 'IoU target'
            raise ValueError(
                f'{name} has {values.numel()} elements but targets has '
                f'{scan.num_pos} positives (one {what} per positive is needed)'
            )
    named = {name: values for name, values, _, _ in per_positive}
    return RankingBatch(
        scores,
        labels,
        named.get('loc_errors'),
        float(delta),
        backend,
        bool(options.filter_negatives),
        scan,
        named.get('ious'),
    )


def _check_range(name: str, low: float, high: float, least: float, most: float) -> None:
    """ValueError naming ``name`` unless its values, from ``low`` to ``high``, are finite and
    in [least, most]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f'NaN or Inf in {name}')
    if name == 'loc_errors' and low < least:
        raise ValueError(
            f'negative values in loc_errors (min {low:g}); localisation errors must be >= 0'
        )
    if low < least or high > most:
        raise ValueError(f'{name} outside [{least:g}, {most:g}] (found {low:g} to {high:g})')


def _flat(tensor: Tensor) -> Tensor:
    """``tensor`` as one dimension: itself where it has one (a view would add an autograd node
    to the backward pass)."""
    return tensor if tensor.dim() == 1 else tensor.reshape(-1)

"""Checks of the losses' arguments, each made once where the argument enters: a module's
hyperparameters when it is built, a functional loss's tensors and hyperparameters when it is
called."""

import math
import numbers

import torch
from torch import Tensor


def check_tensor(name: str, value, kind: str) -> None:
    """Raises ValueError naming ``name`` unless ``value`` is a :class:`torch.Tensor` of the
    dtype ``kind`` asks: 'float' (floating point) or 'label' (integer or bool)."""
    if not isinstance(value, Tensor):
        raise ValueError(f'{name} must be a torch.Tensor, got {type(value).__name__}')
    if kind == 'float':
        ok, want = value.is_floating_point(), 'a floating-point'
    else:
        ok = value.dtype == torch.bool or not (value.is_floating_point() or value.is_complex())
        want = 'an integer or bool'
    if not ok:
        raise ValueError(f'{name} must be {want} tensor, got dtype {value.dtype}')


def check_ranking_tensors(logits, targets, **per_positive) -> None:
    """The tensors of a ranking loss, before anything of them is read: ``logits`` floating
    point, ``targets`` integer or bool with as many elements, on the same device, and each of
    ``per_positive`` (name: tensor, one value per positive) floating point, on that device, at
    most one-dimensional. Raises ValueError naming the argument and the problem; that the
    labels are in {1, 0, -1} and that there is one value per positive, the scan checks
    (``alrp_core.batch.prepare_batch``)."""
    for name, value in (('logits', logits), ('targets', targets), *per_positive.items()):
        if not isinstance(value, Tensor):
            raise ValueError(f'{name} must be a torch.Tensor, got {type(value).__name__}')
    check_tensor('logits', logits, 'float')
    check_tensor('targets', targets, 'label')
    if targets.numel() != logits.numel():
        raise ValueError(
            f'targets has {targets.numel()} elements (shape '
            f'{tuple(targets.shape)}) but logits has {logits.numel()} (shape '
            f'{tuple(logits.shape)})'
        )
    if targets.device != logits.device:
        raise ValueError(f'targets is on {targets.device} but logits on {logits.device}')
    for name, value in per_positive.items():
        check_tensor(name, value, 'float')
        if value.device != logits.device:
            raise ValueError(f'{name} is on {value.device} but logits on {logits.device}')
        if value.dim() > 1:
            raise ValueError(
                f'{name} must be one-dimensional (one value per positive), '
                f'got shape {tuple(value.shape)}'
            )


def check_real(name: str, value) -> float:
    """``value`` as a float: a real number (int, float, a numpy scalar, a one-element real
    tensor), finite; a bool, a string or anything else is refused with a ValueError naming
    ``name``. The one rule of every hyperparameter of the losses and hooks."""
    if isinstance(value, Tensor) and value.numel() == 1:
        if value.dtype != torch.bool and not value.is_complex():
            value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f'{name} must be a real number, got {value!r} ({type(value).__name__})')
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f'{name} must be finite, got {value!r}')
    return number


def check_non_negative(name: str, value) -> float:
    """``value`` as a float, which must be finite and >= 0 (ValueError naming ``name``)."""
    number = check_real(name, value)
    if number < 0:
        raise ValueError(f'{name} must be >= 0, got {value!r}')
    return number


def check_positive(name: str, value) -> float:
    """``value`` as a float, which must be finite and > 0 (ValueError naming ``name``)."""
    number = check_real(name, value)
    if not number > 0:
        raise ValueError(f'{name} must be positive and finite, got {value!r}')
    return number


def check_delta(delta) -> float:
    """``delta`` (half width of the linear part of the smoothed step) as a float, finite > 0."""
    return check_positive('delta', delta)


def check_eps(eps) -> float:
    """``eps`` (FP threshold under which a positive takes no gradient) as a float, finite >= 0."""
    return check_non_negative('eps', eps)

"""Checks of the losses' arguments, made where they enter (module and functional)."""

import math

from torch import Tensor


def check_tensors(**tensors) -> None:
    """Raises ValueError naming the first argument that is not a :class:`torch.Tensor` (before
    anything of the tensors, their device say, is read)."""
    for name, value in tensors.items():
        if not isinstance(value, Tensor):
            raise ValueError(f'{name} must be a torch.Tensor, got {type(value).__name__}')


def _real(name: str, value) -> float:
    if isinstance(value, bool):
        raise ValueError(f'{name} must be a real number, got {value!r}')
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f'{name} must be a real number, got {value!r}') from None


def check_positive(name: str, value) -> float:
    """``value`` as a float, which must be finite and > 0 (ValueError naming ``name``)."""
    number = _real(name, value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f'{name} must be positive and finite, got {value!r}')
    return number


def check_delta(delta) -> float:
    """``delta`` (half width of the linear part of the smoothed step) as a float, finite > 0."""
    return check_positive('delta', delta)


def check_eps(eps) -> float:
    """``eps`` (FP threshold under which a positive takes no gradient) as a float, finite >= 0."""
    value = _real('eps', eps)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f'eps must be finite and >= 0, got {eps!r}')
    return value

"""Checks of the losses' arguments, made where they enter (module and functional)."""

import math
import numbers

import torch
from torch import Tensor


def check_tensors(**tensors) -> None:
    """Raises ValueError naming the first argument that is not a :class:`torch.Tensor` (before
    anything of the tensors, their device say, is read)."""
    for name, value in tensors.items():
        if not isinstance(value, Tensor):
            raise ValueError(f'{name} must be a torch.Tensor, got {type(value).__name__}')


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


class _NoSecondDerivative(torch.autograd.Function):
    """Passes a ranking loss's first-order gradient on, attached to the graph of the scores, and
    refuses to be differentiated: that gradient is an error-driven update, not a derivative."""

    @staticmethod
    def forward(ctx, grad: Tensor, scores: Tensor) -> Tensor:
        return grad.clone()

    @staticmethod
    def backward(ctx, *grads: Tensor):
        raise RuntimeError(
            'a ranking loss (aLRP, AP, Rank & Sort Loss) has no second derivative: its gradient '
            'is an error-driven update of the ranking, not the derivative of a function. A '
            'gradient penalty (create_graph=True) cannot differentiate it: compute the penalty '
            'on a loss of its own'
        )


def first_order_only(grad: Tensor, scores: Tensor) -> Tensor:
    """``grad`` as is, or, when the backward pass builds a graph (``create_graph=True``), tied
    to the graph of ``scores`` so that differentiating it again raises a RuntimeError that says
    why (instead of a gradient without a graph, which a penalty would silently drop)."""
    if not (torch.is_grad_enabled() and scores.requires_grad):
        return grad
    return _NoSecondDerivative.apply(grad, scores)

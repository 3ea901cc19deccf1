"""The autograd side of the ranking losses: their gradient is an error-driven gradient (the
update rule of the ranking, not the derivative of the loss's value), computed in the backward
pass so that it is written once, already scaled by the incoming gradient.

One autograd node (:class:`ErrorDrivenLossFunction`) carries every part of a loss: for aLRP Loss
the error-driven gradient of the logits and the localisation part's gradient of the errors,
computed with the forward pass. A custom Function is not cast by autocast: the losses compute
in float32 (float64 for float64 logits).
"""

from typing import TYPE_CHECKING, Callable, Optional, Tuple

import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from .ranks import NegativeRelations


class ErrorDrivenGradient:
    """The error-driven gradient of a ranking loss on every logit, computed when the backward
    pass asks for it (then already scaled by the incoming gradient: one pass, one tensor).

    Args:
        negatives (NegativeRelations): the negatives' side.
        coefficients (Tensor): shape (2, num_bins), float64, the negatives' gradient ``A[k] +
            B[k] * x`` in interval k: A (row 0) and B (row 1).
        pos_grad (Tensor): shape (P, ), float64, the positives' gradient in index order.
    """

    def __init__(
        self, negatives: 'NegativeRelations', coefficients: Tensor, pos_grad: Tensor
    ) -> None:
        self.negatives, self.coefficients, self.pos_grad = negatives, coefficients, pos_grad

    def __call__(self, scale: Tensor) -> Tensor:
        """The gradient times ``scale`` (a 0-dim tensor), shape (M, )."""
        scale = scale.detach()  # float64 products (a 0-dim tensor does not promote them)
        offset, slope = self.coefficients * scale  # rows of a contiguous tensor: contiguous
        return self.negatives.gradient(offset, slope, self.pos_grad * scale)


class ErrorDrivenLossFunction(torch.autograd.Function):
    """``ErrorDrivenLossFunction.apply(gradients, *inputs, *values)`` returns the tuple
    ``values`` (the parts of a ranking loss); its backward hands ``gradients[n](gradient of
    values[n])`` to ``inputs[n]``: for the scores the error-driven gradient of the loss (not the
    autograd derivative of its value), for aLRP's localisation errors their gradient."""

    @staticmethod
    def forward(ctx, gradients: Tuple[Callable[[Tensor], Tensor], ...], *tensors: Tensor):
        ctx.save_for_backward(tensors[0])  # raises in backward if the scores changed in place
        ctx.gradients = gradients
        ctx.set_materialize_grads(False)  # a value that the loss does not use costs nothing
        return tuple(value.clone() for value in tensors[len(gradients) :])

    @staticmethod
    def backward(ctx, *grads: Optional[Tensor]):
        (scores,) = ctx.saved_tensors  # the read raises if the scores changed in place
        inputs = tuple(
            None if grad is None else first_order_only(gradient(grad), scores)
            for gradient, grad in zip(ctx.gradients, grads)
        )
        return (None,) + inputs + (None,) * len(grads)


def zero_loss(*tensors: Tensor) -> Tensor:
    """A zero that backpropagates zero gradients to ``tensors`` (no positive in the batch)."""
    return sum(t.sum() * 0 for t in tensors)


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

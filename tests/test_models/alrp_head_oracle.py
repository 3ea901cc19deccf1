"""An independent reference of an aLRP head's loss terms and gradients: the dense float64 aLRP
Loss of tests/test_core/oracle.py on targets that a test derives from mmdet's own head, with the
boxes decoded and their GIoU computed here, by the definitions."""

from typing import Dict, Sequence

import numpy as np
import torch
from torch import Tensor

from tests.test_core.oracle import alrp_oracle


def giou(pred: Tensor, target: Tensor) -> Tensor:
    """GIoU of paired boxes (x1, y1, x2, y2), shapes (P, 4), by the definition."""

    def area(boxes: Tensor) -> Tensor:
        return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)

    inter = area(
        torch.cat([torch.max(pred[:, :2], target[:, :2]), torch.min(pred[:, 2:], target[:, 2:])], 1)
    )
    union = area(pred) + area(target) - inter
    hull = area(
        torch.cat([torch.min(pred[:, :2], target[:, :2]), torch.max(pred[:, 2:], target[:, 2:])], 1)
    )
    return inter / union - (hull - union) / hull


def onehot_labels(classes: Tensor, num_classes: int, ignored: Tensor = None) -> Tensor:
    """(A, C) targets of mmdet's class labels (``num_classes``: background): 1 at a positive's
    class, 0 elsewhere, -1 on every class of an ignored prior."""
    labels = torch.zeros(classes.numel(), num_classes, dtype=torch.long)
    pos = classes < num_classes
    labels[pos, classes[pos]] = 1
    if ignored is not None:
        labels[ignored] = -1
    return labels


def assert_matches_oracle(
    losses: Dict[str, Tensor],
    leaves: Sequence[Tensor],
    logits: Tensor,
    labels: Tensor,
    pos_boxes: Tensor,
    pos_targets: Tensor,
    tau: float = 0.5,
    sb_weight: float = 50.0,
    loss_weight: float = 1.0,
) -> None:
    """The head's ``losses`` (computed from the output tensors ``leaves``) against the oracle.

    ``logits`` (A, C) and ``pos_boxes`` (P, 4) are float64 functions of ``leaves`` (the
    positives' decoded boxes, in index order of the positives of ``labels``), ``pos_targets``
    their gt boxes. Checks ``loss_cls`` = w L_cls, ``loss_bbox`` = w SB L_loc (w:
    ``loss_weight``), ``num_pos`` and the gradient of their sum with respect to every leaf: the
    error-driven gradient of w L_cls on the logits and w SB dL_loc/de chained through the
    GIoU-based errors (tau: ``tau``) to the box outputs.
    """
    errors = (1 - giou(pos_boxes, pos_targets)) / (2 * (1 - tau))
    loss_cls, loss_loc, grad_logits, grad_errors = alrp_oracle(
        logits.detach().numpy(), labels.numpy(), errors.detach().numpy()
    )
    assert labels.eq(1).sum() == len(errors) > 0
    assert losses['num_pos'].item() == len(errors)
    torch.testing.assert_close(
        losses['loss_cls'].double(),
        torch.tensor(loss_weight * loss_cls, dtype=torch.float64),
        rtol=1e-5,
        atol=1e-6,
    )
    torch.testing.assert_close(
        losses['loss_bbox'].double(),
        torch.tensor(loss_weight * sb_weight * loss_loc, dtype=torch.float64),
        rtol=1e-5,
        atol=1e-5,
    )

    head_grads = torch.autograd.grad(losses['loss_cls'] + losses['loss_bbox'], leaves)
    surrogate = loss_weight * (
        (logits * torch.from_numpy(grad_logits).reshape(logits.shape)).sum()
        + sb_weight * (errors * torch.from_numpy(np.ascontiguousarray(grad_errors))).sum()
    )
    oracle_grads = torch.autograd.grad(surrogate, leaves, allow_unused=True)
    for head_grad, oracle_grad in zip(head_grads, oracle_grads):
        expected = torch.zeros_like(head_grad) if oracle_grad is None else oracle_grad
        torch.testing.assert_close(head_grad.double(), expected.double(), rtol=1e-4, atol=1e-6)

"""The loss terms and logged values of a head trained with aLRP Loss."""
from typing import Dict

from torch import Tensor

from alrp_core import alrp_loss

from ..losses import SelfBalance, aLRPLoss


def alrp_head_loss(loss_alrp: aLRPLoss, self_balance: SelfBalance, logits: Tensor,
                   targets: Tensor, loc_errors: Tensor) -> Dict[str, Tensor]:
    """aLRP Loss of a head's batch, balanced by its self-balance and scaled by the head weight.

    The unweighted values ``L_cls``, ``L_loc`` of :func:`alrp_loss` (with ``loss_alrp``'s
    ``delta`` and ``eps``) feed the self-balance; ``loss_alrp.loss_weight`` (w) scales both terms.

    Args:
        loss_alrp (aLRPLoss): the head's loss module, for ``delta``, ``eps`` and the weight w.
        self_balance (SelfBalance): the head's self-balance (SB).
        logits (Tensor): any shape, the M logits of the batch.
        targets (Tensor): M labels: 1 positive, 0 negative, -1 ignored.
        loc_errors (Tensor): shape (P, ), the positives' errors in index order of ``targets``.

    Returns:
        dict[str, Tensor]: ``loss_cls = w * L_cls``, ``loss_bbox = w * SB * L_loc`` and, to log,
        ``alrp_cls = L_cls``, ``alrp_loc = L_loc``, ``sb_weight = SB``, ``num_pos = P`` (float).
    """
    loss_cls, loss_loc = alrp_loss(logits, targets, loc_errors, loss_alrp.delta, loss_alrp.eps)
    terms = self_balance.weigh(loss_cls, loss_loc)
    terms['loss_cls'] = loss_alrp.loss_weight * terms['loss_cls']
    terms['loss_bbox'] = loss_alrp.loss_weight * terms['loss_bbox']
    terms['num_pos'] = loss_cls.new_tensor(float(loc_errors.numel()))
    return terms

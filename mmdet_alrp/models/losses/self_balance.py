"""Self-balance (SB) of aLRP Loss: the weight of the localisation part, learnt from the data."""

import logging
from typing import Dict

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import print_log
from torch import Tensor, nn

from alrp_core.checks import check_positive
from mmdet.registry import MODELS


@MODELS.register_module()
class SelfBalance(nn.Module):
    """The SB weight of aLRP Loss and its running sums, kept in buffers.

    ``total = L_cls + SB * L_loc``. SB starts at ``init_weight`` (50 in the paper) and, at the end
    of every period (one epoch by default, see :class:`SelfBalanceHook`), is reset to
    ``(mean L_cls + mean L_loc) / mean L_loc`` over the period. The buffers travel in checkpoints,
    so ``--resume`` continues both SB and the sums of a period begun. Under DDP every
    :meth:`accumulate` all-reduces the batch's values, so each rank holds the sums of all ranks
    and computes the same SB (whatever DDP's ``broadcast_buffers`` is). A batch whose L_cls or
    L_loc is not finite (on any rank) is left out of the sums, with a warning, so that SB stays
    finite.

    Args:
        init_weight (float): SB before the first update, finite and > 0. Defaults to 50.
    """

    def __init__(self, init_weight: float = 50.0) -> None:
        super().__init__()
        weight = check_positive('init_weight', init_weight)
        self.register_buffer('weight', torch.tensor(weight, dtype=torch.float64))
        # [sum of L_cls, sum of L_loc, number of batches] over the current period, all ranks.
        self.register_buffer('sums', torch.zeros(3, dtype=torch.float64))
        #: Set by :class:`SelfBalanceHook` before training; without it SB never updates.
        self.updated_by_hook = False
        self.warned_no_hook = False

    def accumulate(self, loss_cls: Tensor, loss_loc: Tensor) -> None:
        """Add one training batch's unweighted aLRP values (every rank calls this). A rank's
        batch with a NaN or Inf value adds nothing, and a warning tells how many were left out.
        """
        values = torch.stack([loss_cls.detach().to(self.sums), loss_loc.detach().to(self.sums)])
        finite = torch.isfinite(values).all()
        batch = torch.cat([torch.where(finite, values, 0.0), finite.to(self.sums)[None]])
        world_size = get_world_size()
        if world_size > 1:
            all_reduce(batch, op='sum')
        self.sums += batch
        skipped = world_size - int(batch[2].item())
        if skipped:
            print_log(
                f'self-balance: {skipped} batch(es) of this iteration left out of the SB '
                'sums, their L_cls or L_loc being NaN or Inf',
                logger='current',
                level=logging.WARNING,
            )

    def warn_without_hook(self) -> None:
        """Warn once, at the first training batch, if no :class:`SelfBalanceHook` ends the
        periods: SB would stay at its initial value for the whole training."""
        if self.updated_by_hook or self.warned_no_hook:
            return
        self.warned_no_hook = True
        print_log(
            f'self-balance: no SelfBalanceHook updates this SB, which stays at '
            f'{self.weight.item():g} for the whole training. Add '
            "custom_hooks=[dict(type='SelfBalanceHook')] to the config (as our aLRP configs "
            'do) to reset SB every epoch',
            logger='current',
            level=logging.WARNING,
        )

    def update(self) -> None:
        """End a period: reset SB from the period's means and clear the sums. A period with no
        localisation error (no positive at all) keeps SB as it is."""
        cls_sum, loc_sum, _ = self.sums.tolist()
        if loc_sum > 0:
            self.weight.fill_((cls_sum + loc_sum) / loc_sum)
        self.sums.zero_()

    def weigh(self, loss_cls: Tensor, loss_loc: Tensor) -> Dict[str, Tensor]:
        """Accumulate (in training) and return the terms of the total aLRP loss and the values
        to log: ``loss_cls``, ``loss_bbox = SB * L_loc``, ``alrp_cls``, ``alrp_loc``,
        ``sb_weight``."""
        if self.training:
            self.warn_without_hook()
            self.accumulate(loss_cls, loss_loc)
        weight = self.weight.to(loss_loc.dtype)
        return dict(
            loss_cls=loss_cls,
            loss_bbox=weight * loss_loc,
            alrp_cls=loss_cls.detach(),
            alrp_loc=loss_loc.detach(),
            sb_weight=weight.detach().clone(),
        )

"""Self-balance (SB) of aLRP Loss: the weight of the localisation part, learnt from the data."""
from typing import Dict

import torch
from mmengine.dist import all_reduce, get_world_size
from torch import Tensor, nn

from mmdet.registry import MODELS


@MODELS.register_module()
class SelfBalance(nn.Module):
    """The SB weight of aLRP Loss and its running sums, kept in buffers.

    ``total = L_cls + SB * L_loc``. SB starts at ``init_weight`` (50 in the paper) and, at the end
    of every period (one epoch by default, see :class:`SelfBalanceHook`), is reset to
    ``(mean L_cls + mean L_loc) / mean L_loc`` over the period. The buffers travel in checkpoints,
    so ``--resume`` continues both SB and the sums of a period begun. Under DDP every
    :meth:`accumulate` all-reduces the batch's values, so each rank holds the sums of all ranks
    and computes the same SB (whatever DDP's ``broadcast_buffers`` is).

    Args:
        init_weight (float): SB before the first update. Defaults to 50.
    """

    def __init__(self, init_weight: float = 50.0) -> None:
        super().__init__()
        self.register_buffer('weight', torch.tensor(float(init_weight), dtype=torch.float64))
        # [sum of L_cls, sum of L_loc, number of batches] over the current period, all ranks.
        self.register_buffer('sums', torch.zeros(3, dtype=torch.float64))

    def accumulate(self, loss_cls: Tensor, loss_loc: Tensor) -> None:
        """Add one training batch's unweighted aLRP values (every rank calls this)."""
        batch = torch.stack([loss_cls.detach().to(self.sums), loss_loc.detach().to(self.sums),
                             self.sums.new_ones(())])
        if get_world_size() > 1:
            all_reduce(batch, op='sum')
        self.sums += batch

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
            self.accumulate(loss_cls, loss_loc)
        weight = self.weight.to(loss_loc.dtype)
        return dict(loss_cls=loss_cls, loss_bbox=weight * loss_loc,
                    alrp_cls=loss_cls.detach(), alrp_loc=loss_loc.detach(),
                    sb_weight=weight.detach().clone())

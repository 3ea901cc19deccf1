"""AP Loss (Chen et al., CVPR 2019), the ranking-based predecessor of aLRP Loss."""
from torch import Tensor, nn

from alrp_core import ap_loss
from alrp_core.checks import check_delta
from mmdet.registry import MODELS


@MODELS.register_module()
class APLoss(nn.Module):
    """AP Loss as a module, see :func:`ap_loss`.

    Args:
        delta (float): half width of the linear part of the smoothed step, finite and > 0.
            Defaults to 1.0.
        loss_weight (float): scales the loss. Defaults to 1.0.
    """

    def __init__(self, delta: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.delta, self.loss_weight = check_delta(delta), loss_weight

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        return self.loss_weight * ap_loss(logits, targets, self.delta)

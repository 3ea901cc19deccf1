"""aLRP Loss (Oksuz et al., NeurIPS 2020): one ranking loss for classification and boxes."""
from typing import Tuple

from torch import Tensor, nn

from alrp_core import alrp_loss
from alrp_core.checks import check_delta, check_eps
from mmdet.registry import MODELS


@MODELS.register_module()
class aLRPLoss(nn.Module):
    """aLRP Loss as a module, see :func:`alrp_loss`.

    Args:
        delta (float): half width of the linear part of the smoothed step, finite and > 0.
            Defaults to 1.0.
        eps (float): FP threshold under which a positive takes no gradient, finite and >= 0.
            Defaults to 1e-5.
        loss_weight (float): scales both parts (the head weight of aLRP Faster R-CNN's RPN,
            say). Defaults to 1.0.
    """

    def __init__(self, delta: float = 1.0, eps: float = 1e-5, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.delta, self.eps, self.loss_weight = check_delta(delta), check_eps(eps), loss_weight

    def forward(self, logits: Tensor, targets: Tensor,
                loc_errors: Tensor) -> Tuple[Tensor, Tensor]:
        """Returns ``(loss_cls, loss_loc)``, each scaled by ``loss_weight``."""
        loss_cls, loss_loc = alrp_loss(logits, targets, loc_errors, self.delta, self.eps)
        return self.loss_weight * loss_cls, self.loss_weight * loss_loc

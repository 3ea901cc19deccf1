"""aLRP Loss (Oksuz et al., NeurIPS 2020): one ranking loss for classification and boxes."""

from typing import Dict

from torch import Tensor

from alrp_core import alrp_loss
from alrp_core.checks import check_delta, check_eps, check_non_negative
from mmdet.registry import MODELS
from mmdet.utils import ConfigType

from ..utils.input_checks import check_use_sigmoid
from .loc_error import check_tau, giou_loc_error
from .ranking_loss import RankingLoss


@MODELS.register_module()
class aLRPLoss(RankingLoss):
    """aLRP Loss of a head's batch, self-balanced: everything aLRP needs for one head.

    A head calls it with the logits and 1 / 0 / -1 labels of every image, prior and class of the
    batch and the predicted and target boxes of its positives. The localisation error of a
    positive is ``(1 - GIoU(predicted, target)) / (2 * (1 - tau))`` (:func:`giou_loc_error`);
    :func:`alrp_loss` gives ``L_cls`` and ``L_loc``; the child :class:`SelfBalance` (SB) sees
    these unweighted values and weighs ``L_loc``; ``loss_weight`` (w) scales both terms once.

    For mmdet's ``BBoxHead``: one sigmoid logit per class and sigmoid scores with a zero
    background column (see :class:`RankingLoss`).

    Args:
        delta (float): half width of the linear part of the smoothed step, finite and > 0.
            Defaults to 1.0.
        eps (float): FP threshold under which a positive takes no gradient, finite and >= 0.
            Defaults to 1e-5.
        tau (float): IoU threshold of a positive, normalising the localisation error, in
            [0, 1). Defaults to 0.5.
        loss_weight (float): the head weight w (0.2 for aLRP Faster R-CNN's RPN, say), finite
            and >= 0. Defaults to 1.0.
        self_balance (dict): config of the :class:`SelfBalance` weight of the localisation part.
            Defaults to ``dict(type='SelfBalance', init_weight=50.)``.
        use_sigmoid (bool): must be True (heads read it to build one sigmoid logit per class).
    """

    #: Heads pass the positives' boxes decoded, (x1, y1, x2, y2).
    decoded_boxes = True

    def __init__(
        self,
        delta: float = 1.0,
        eps: float = 1e-5,
        tau: float = 0.5,
        loss_weight: float = 1.0,
        self_balance: ConfigType = dict(type='SelfBalance', init_weight=50.0),
        use_sigmoid: bool = True,
    ) -> None:
        super().__init__()
        self.delta, self.eps, self.tau = check_delta(delta), check_eps(eps), check_tau(tau)
        self.loss_weight = check_non_negative('loss_weight', loss_weight)
        self.use_sigmoid = check_use_sigmoid('aLRP Loss', use_sigmoid)
        self.self_balance = MODELS.build(self_balance)

    def forward(
        self, logits: Tensor, labels: Tensor, pos_pred_boxes: Tensor, pos_target_boxes: Tensor
    ) -> Dict[str, Tensor]:
        """aLRP Loss of the batch.

        Args:
            logits (Tensor): any shape, e.g. (A, C), the M logits of the batch.
            labels (Tensor): M labels (int): 1 positive, 0 negative, -1 ignored.
            pos_pred_boxes (Tensor): shape (P, 4), the predicted boxes (x1, y1, x2, y2) of the
                positives, in index order of the flattened ``labels``.
            pos_target_boxes (Tensor): shape (P, 4), their target boxes.

        Returns:
            dict[str, Tensor]: ``loss_cls = w * L_cls``, ``loss_bbox = w * SB * L_loc`` and, to
            log, ``alrp_cls = L_cls``, ``alrp_loc = L_loc``, ``sb_weight = SB`` and
            ``num_pos = P`` (float).
        """
        loc_errors = giou_loc_error(pos_pred_boxes, pos_target_boxes, self.tau)
        loss_cls, loss_loc = alrp_loss(logits, labels, loc_errors, self.delta, self.eps)
        terms = self.self_balance.weigh(loss_cls, loss_loc)
        terms['loss_cls'] = self.loss_weight * terms['loss_cls']
        terms['loss_bbox'] = self.loss_weight * terms['loss_bbox']
        terms['num_pos'] = loss_cls.new_tensor(float(loc_errors.numel()))
        return terms

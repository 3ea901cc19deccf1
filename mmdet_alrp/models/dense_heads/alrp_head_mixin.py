"""The loss of the aLRP dense heads: aLRP Loss over every prior of the batch, self-balanced."""
from typing import Dict

from torch import Tensor

from mmdet.registry import MODELS
from mmdet.utils import ConfigType

from ..losses import aLRPLoss
from ..utils import alrp_head_loss, giou_loc_error
from .ranking_utils import RankingHeadMixin, RankingTargets


class aLRPHeadMixin(RankingHeadMixin):
    """Makes a ranking head (one with ``ranking_targets``, see :class:`RankingRetinaHead`) an
    aLRP Loss head.

    One aLRP Loss is computed over the logits of every image, level, prior and class of the batch.
    The localisation error of a positive is ``(1 - GIoU(predicted box, target box)) /
    (2 * (1 - tau))`` on the boxes decoded in float32 (:func:`giou_loc_error`). The total loss is
    ``loss_cls + loss_bbox`` with ``loss_bbox = SB * L_loc`` (:class:`SelfBalance`), both scaled
    by ``loss_cls``'s ``loss_weight`` (:func:`alrp_head_loss`).

    Args:
        loss_cls (dict): config of an :class:`aLRPLoss`. Defaults to ``dict(type='aLRPLoss')``.
        self_balance (dict): config of the :class:`SelfBalance` weight of the localisation part.
            Defaults to ``dict(type='SelfBalance', init_weight=50.)``.
        tau (float): IoU threshold of a positive in the normalisation of the localisation error,
            in [0, 1). Defaults to 0.5.
        **kwargs: the arguments of the head. A ``loss_bbox`` is accepted and not used: aLRP Loss
            localises through its own ranking.
    """

    def __init__(self,
                 *args,
                 loss_cls: ConfigType = dict(type='aLRPLoss'),
                 self_balance: ConfigType = dict(type='SelfBalance', init_weight=50.),
                 tau: float = 0.5,
                 **kwargs) -> None:
        if not 0 <= tau < 1:
            raise ValueError(f'tau must be in [0, 1), got {tau}')
        super().__init__(*args, loss_cls=loss_cls, **kwargs)
        if not isinstance(self.loss_cls, aLRPLoss):
            raise ValueError(f'{type(self).__name__} needs loss_cls=dict(type="aLRPLoss"), got '
                             f'{type(self.loss_cls).__name__}')
        self.loss_bbox = None
        self.tau = tau
        self.self_balance = MODELS.build(self_balance)

    def loss_by_ranking_targets(self, targets: RankingTargets) -> Dict[str, Tensor]:
        """aLRP Loss of the flattened batch.

        Args:
            targets (:obj:`RankingTargets`): the batch, from ``ranking_targets``.

        Returns:
            dict[str, Tensor]: ``loss_cls`` and ``loss_bbox`` (= SB * L_loc), the unweighted
            ``alrp_cls`` and ``alrp_loc``, ``sb_weight`` and ``num_pos``, the number of positive
            priors of the batch (float), see :func:`alrp_head_loss`.
        """
        loc_errors = giou_loc_error(targets.pos_decoded_preds, targets.pos_decoded_targets,
                                    self.tau)
        return alrp_head_loss(self.loss_cls, self.self_balance, targets.logits, targets.labels,
                              loc_errors)

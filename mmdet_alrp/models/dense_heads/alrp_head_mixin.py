"""The loss of the aLRP dense heads: aLRP Loss over every prior of the batch, self-balanced."""
from typing import Dict, List

from torch import Tensor

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList, OptInstanceList

from ..losses import aLRPLoss
from ..utils import alrp_head_loss, giou_loc_error


class aLRPHeadMixin:
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

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None) -> Dict[str, Tensor]:
        """aLRP Loss of the batch.

        Args:
            cls_scores (list[Tensor]): per level, shape (N, num_base_priors * C, H, W).
            bbox_preds (list[Tensor]): per level, shape (N, num_base_priors * 4, H, W).
            batch_gt_instances (list[:obj:`InstanceData`]): ``bboxes`` and ``labels`` of every
                image.
            batch_img_metas (list[dict]): meta information of every image.
            batch_gt_instances_ignore (list[:obj:`InstanceData`], optional): boxes to ignore.

        Returns:
            dict[str, Tensor]: ``loss_cls`` and ``loss_bbox`` (= SB * L_loc), the unweighted
            ``alrp_cls`` and ``alrp_loc``, ``sb_weight`` and ``num_pos``, the number of positive
            priors of the batch (float), see :func:`alrp_head_loss`.
        """
        targets = self.ranking_targets(cls_scores, bbox_preds, batch_gt_instances,
                                       batch_img_metas, batch_gt_instances_ignore)
        loc_errors = giou_loc_error(targets.pos_decoded_preds, targets.pos_decoded_targets,
                                    self.tau)
        return alrp_head_loss(self.loss_cls, self.self_balance, targets.logits, targets.labels,
                              loc_errors)

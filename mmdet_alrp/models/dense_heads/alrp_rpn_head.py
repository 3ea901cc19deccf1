"""The region proposal network of aLRP Faster R-CNN."""
from typing import Dict, List, Optional

import torch
from mmengine.config import ConfigDict
from torch import Tensor

from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList

from ..utils.input_checks import image_name
from .alrp_head_mixin import aLRPHeadMixin
from .ranking_retina_head import RankingRetinaHead
from .ranking_utils import RankingTargets, use_sigmoid_logits


@MODELS.register_module()
class aLRPRPNHead(aLRPHeadMixin, RPNHead):
    """RPN head trained with aLRP Loss (Oksuz et al., NeurIPS 2020).

    One sigmoid logit per anchor. The anchors of all levels and images make one aLRP Loss with
    the head's own self-balance: an anchor the assigner makes positive has target 1, a negative
    0, an anchor it ignores (IoU between the thresholds, outside the allowed border) -1. No
    sampling: the train config's sampler should be a ``PseudoSampler``. A positive's error is
    ``(1 - GIoU(decoded box, gt box)) / (2 * (1 - tau))``. ``loss_cls``'s ``loss_weight`` is the
    head weight: it scales both terms, while the self-balance and the log see the unweighted
    aLRP values. Proposals are made as by :class:`RPNHead`, from sigmoid scores.

    Args:
        in_channels (int): channels of the input feature maps.
        loss_cls (dict): config of an :class:`aLRPLoss`. Defaults to
            ``dict(type='aLRPLoss', loss_weight=0.2)`` (the paper's head weight).
        tau (float): positive IoU threshold normalising the localisation error, in [0, 1).
            Defaults to 0.7 (the RPN assigner's).
        reg_decoded_bbox (bool): regression targets are the gt boxes themselves (True) or
            their encodings, decoded back for the loss (False). Defaults to True.
        **kwargs: ``self_balance`` (see :class:`aLRPHeadMixin`) and the arguments of
            :class:`RPNHead`.
    """

    def __init__(self,
                 in_channels: int,
                 loss_cls: ConfigType = dict(type='aLRPLoss', loss_weight=0.2),
                 tau: float = 0.7,
                 reg_decoded_bbox: bool = True,
                 **kwargs) -> None:
        super().__init__(in_channels, loss_cls=loss_cls, tau=tau,
                         reg_decoded_bbox=reg_decoded_bbox, **kwargs)

    def _init_layers(self) -> None:
        use_sigmoid_logits(self)
        super()._init_layers()

    # The batch flattened in the order of the anchors, as for RetinaNet (C = 1).
    ranking_targets = RankingRetinaHead.ranking_targets

    def loss_by_ranking_targets(self, targets: RankingTargets) -> Dict[str, Tensor]:
        """aLRP Loss of the flattened batch (C = 1), the terms of
        :meth:`aLRPHeadMixin.loss_by_ranking_targets` under the keys of an RPN.

        Args:
            targets (:obj:`RankingTargets`): the batch, from ``ranking_targets``.

        Returns:
            dict[str, Tensor]: ``loss_rpn_cls`` and ``loss_rpn_bbox`` (weighted); to log,
            ``rpn_alrp_cls``, ``rpn_alrp_loc`` (unweighted), ``rpn_sb_weight`` and
            ``rpn_num_pos``.
        """
        terms = super().loss_by_ranking_targets(targets)
        return dict(loss_rpn_cls=terms.pop('loss_cls'), loss_rpn_bbox=terms.pop('loss_bbox'),
                    **{f'rpn_{key}': value for key, value in terms.items()})

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[ConfigDict] = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """The proposals of :meth:`RPNHead.predict_by_feat`, after the logits are checked: NaN
        logits, which would give proposals NaN scores, raise a ``ValueError`` naming the image.
        """
        nan_per_image = torch.stack([score.flatten(1).isnan().any(1) for score in cls_scores])
        nan_images = nan_per_image.any(0).nonzero().flatten().tolist()
        if nan_images:
            image = image_name(nan_images[0], batch_img_metas)
            raise ValueError(f'NaN in the RPN logits of {image}: its proposals would have NaN '
                             'scores')
        return super().predict_by_feat(cls_scores, bbox_preds, score_factors, batch_img_metas,
                                       cfg, rescale, with_nms)

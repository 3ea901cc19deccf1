"""The region proposal network of aLRP Faster R-CNN."""

from typing import Dict, List, Optional

import torch
from mmengine.config import ConfigDict
from torch import Tensor

from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList, OptInstanceList

from ..utils.input_checks import image_name
from .anchor_ranking_adapter import AnchorRankingAdapter


@MODELS.register_module()
class aLRPRPNHead(AnchorRankingAdapter, RPNHead):
    """RPN head trained with aLRP Loss (Oksuz et al., NeurIPS 2020).

    One sigmoid logit per anchor. The anchors of all levels and images make one aLRP Loss with
    the loss's own self-balance (see :class:`AnchorRankingAdapter`): an anchor the assigner
    makes positive has target 1, a negative 0, an anchor it ignores (IoU between the
    thresholds, outside the allowed border) -1. No sampling: the train config's sampler should
    be a ``PseudoSampler``. ``loss_cls``'s ``loss_weight`` is the head weight: it scales both
    terms, while the self-balance and the log see the unweighted aLRP values. Proposals are
    made as by :class:`RPNHead`, from sigmoid scores.

    Args:
        in_channels (int): channels of the input feature maps.
        loss_cls (dict): config of an :class:`aLRPLoss`; its ``tau`` defaults to 0.7 here (the
            RPN assigner's positive IoU threshold). Defaults to
            ``dict(type='aLRPLoss', loss_weight=0.2)`` (the paper's head weight).
        reg_decoded_bbox (bool): regression targets are the gt boxes themselves (True) or
            their encodings, decoded back for the loss (False). Defaults to True.
        **kwargs: the arguments of :class:`RPNHead`.
    """

    loss_types = ('aLRPLoss',)

    def __init__(
        self,
        in_channels: int,
        loss_cls: ConfigType = dict(type='aLRPLoss', loss_weight=0.2),
        reg_decoded_bbox: bool = True,
        **kwargs,
    ) -> None:
        if loss_cls.get('type') == 'aLRPLoss':
            loss_cls = dict(dict(tau=0.7), **loss_cls)
        super().__init__(
            in_channels, loss_cls=loss_cls, reg_decoded_bbox=reg_decoded_bbox, **kwargs
        )

    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None,
    ) -> Dict[str, Tensor]:
        """The terms of :meth:`AnchorRankingAdapter.loss_by_feat` (C = 1) under the keys of an
        RPN: ``loss_rpn_cls`` and ``loss_rpn_bbox`` (weighted); to log, ``rpn_alrp_cls``,
        ``rpn_alrp_loc`` (unweighted), ``rpn_sb_weight`` and ``rpn_num_pos``."""
        terms = super().loss_by_feat(
            cls_scores, bbox_preds, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore
        )
        return dict(
            loss_rpn_cls=terms.pop('loss_cls'),
            loss_rpn_bbox=terms.pop('loss_bbox'),
            **{f'rpn_{key}': value for key, value in terms.items()},
        )

    def predict_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        score_factors: Optional[List[Tensor]] = None,
        batch_img_metas: Optional[List[dict]] = None,
        cfg: Optional[ConfigDict] = None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> InstanceList:
        """The proposals of :meth:`RPNHead.predict_by_feat`, after the logits are checked: NaN
        logits, which would give proposals NaN scores, raise a ``ValueError`` naming the image.
        """
        nan_per_image = torch.stack([score.flatten(1).isnan().any(1) for score in cls_scores])
        nan_images = nan_per_image.any(0).nonzero().flatten().tolist()
        if nan_images:
            image = image_name(nan_images[0], batch_img_metas)
            raise ValueError(
                f'NaN in the RPN logits of {image}: its proposals would have NaN scores'
            )
        return super().predict_by_feat(
            cls_scores, bbox_preds, score_factors, batch_img_metas, cfg, rescale, with_nms
        )

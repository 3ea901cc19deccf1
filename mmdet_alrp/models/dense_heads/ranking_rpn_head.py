"""The region proposal network of a ranking loss (aLRP, RS Faster R-CNN)."""

from typing import Dict, List, Optional

import torch
from mmengine.config import ConfigDict
from torch import Tensor

from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList, OptInstanceList

from ..utils import default_reg_decoded_bbox
from ..utils.input_checks import image_name
from .anchor_ranking_adapter import AnchorRankingAdapter


@MODELS.register_module()
class RankingRPNHead(AnchorRankingAdapter, RPNHead):
    """RPN head trained with a ranking loss (aLRPLoss, APLoss or RankSortLoss, by
    ``loss_cls``): the RPN of aLRP Faster R-CNN and of RS Faster and Cascade R-CNN.

    One sigmoid logit per anchor. The anchors of all levels and images make one ranking loss
    (see :class:`AnchorRankingAdapter`): an anchor the assigner makes positive has target 1, a
    negative 0, an anchor it ignores (IoU between the thresholds, outside the allowed border)
    -1. No sampling: the train config's sampler should be a ``PseudoSampler``. ``loss_cls``'s
    ``loss_weight`` is the head weight (0.2 in both papers): it scales every loss term, while
    the self-balance and the log see the unweighted values. Proposals are made as by
    :class:`RPNHead`, from sigmoid scores.

    Args:
        in_channels (int): channels of the input feature maps.
        loss_cls (dict): config of the ranking loss; an :class:`aLRPLoss`'s ``tau`` defaults to
            0.7 here (the RPN assigner's positive IoU threshold). Defaults to
            ``dict(type='aLRPLoss', loss_weight=0.2)``.
        reg_decoded_bbox (bool, optional): regression targets are the gt boxes themselves
            (True) or their encodings (False; decoded back for a loss of decoded boxes).
            Defaults to None: True for aLRPLoss and RankSortLoss, False for APLoss.
        **kwargs: the arguments of :class:`RPNHead`.
    """

    def __init__(
        self,
        in_channels: int,
        loss_cls: ConfigType = dict(type='aLRPLoss', loss_weight=0.2),
        reg_decoded_bbox: Optional[bool] = None,
        **kwargs,
    ) -> None:
        if loss_cls.get('type') == 'aLRPLoss':
            loss_cls = dict(dict(tau=0.7), **loss_cls)
        super().__init__(
            in_channels,
            loss_cls=loss_cls,
            reg_decoded_bbox=default_reg_decoded_bbox(loss_cls, reg_decoded_bbox),
            **kwargs,
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
        RPN: ``loss_<name>`` as ``loss_rpn_<name>`` (``loss_rpn_cls``, ``loss_rpn_bbox`` of
        aLRPLoss; ``loss_rpn_rank``, ``loss_rpn_sort``, ``loss_rpn_bbox`` of RankSortLoss), the
        values to log with the prefix ``rpn_`` (``rpn_num_pos``, say)."""
        terms = super().loss_by_feat(
            cls_scores, bbox_preds, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore
        )
        return {
            f'loss_rpn_{key[5:]}' if key.startswith('loss_') else f'rpn_{key}': value
            for key, value in terms.items()
        }

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

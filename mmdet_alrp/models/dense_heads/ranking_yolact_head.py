"""YOLACT's box head trained with Rank & Sort Loss: RS-YOLACT's classifier and box loss, and the
weights and balance target of its mask loss."""

from typing import Dict, List, Optional

import torch
from torch import Tensor

from mmdet.models.dense_heads import YOLACTHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList, OptInstanceList

from ..utils import default_reg_decoded_bbox
from .anchor_ranking_adapter import AnchorRankingAdapter


@MODELS.register_module()
class RankingYOLACTHead(AnchorRankingAdapter, YOLACTHead):
    """mmdet's YOLACT box head trained as RS-YOLACT (Oksuz et al., ICCV 2021).

    The targets are YOLACTHead's (a MaxIoU assigner, mmdet's ``PseudoSampler``); the C sigmoid
    logits (no background logit) of every anchor and class of the batch go to one
    :class:`RankSortLoss` with the positives' decoded boxes (see :class:`AnchorRankingAdapter`):
    ``loss_rank``, ``loss_sort`` and the score-weighted GIoU loss ``loss_bbox``, self-balanced to
    them. Mask coefficients are YOLACTHead's (tanh).

    For the mask head (:class:`RankingYOLACTProtonet`), :meth:`get_positive_infos` adds to each
    image's positives (YOLACTHead's: ``coeffs``, ``bboxes`` of their ground truth,
    ``pos_inds``, ``pos_assigned_gt_inds``) their ``weights``, shape (P_i, ): the detached highest
    class score (sigmoid) of each positive anchor, as the box loss weighs it; and the metainfo
    ``balance_target``: the detached ``loss_rank + loss_sort`` of the batch, the value the mask
    loss is balanced to. Prediction is YOLACTHead's (sigmoid scores, a zero background column,
    fast NMS).

    As the RS code: the targets, the sigmoid classifier of C logits, the weights and the
    balance target. Deliberately different: positives are ``label < num_classes`` for any number
    of classes (the RS code tests ``label < 80``); a batch without positives gives zero losses
    (the RS code raises); the boxes are compared in image space (the RS code decodes them
    against a unit anchor: the same IoU and GIoU, but for the width clipping); ``use_ohem``
    must be False, since every anchor enters the ranking (the RS code sets it True only to get
    a ``PseudoSampler``, which mmdet 3.3 takes from ``train_cfg.sampler``).

    Args:
        num_classes (int): number of classes, without background.
        in_channels (int): channels of the input feature maps.
        loss_cls (dict): a ``RankSortLoss``. Defaults to ``dict(type='RankSortLoss')``.
        reg_decoded_bbox (bool, optional): the targets are the ground-truth boxes (True) or
            their encodings (False, decoded back for the loss). Defaults to None: True.
        use_ohem (bool): must be False. Defaults to False.
        **kwargs: the other arguments of :class:`YOLACTHead`.

    Example:
        >>> import torch
        >>> head = RankingYOLACTHead(num_classes=3, in_channels=8, feat_channels=8)
        >>> cls_score, bbox_pred, coeffs = head.forward_single(torch.rand(1, 8, 16, 16))
        >>> cls_score.shape[1] == head.num_base_priors * 3
        True
    """

    #: The mask loss is balanced to ``loss_rank + loss_sort``: Rank & Sort Loss alone.
    loss_types = ('RankSortLoss',)

    def __init__(
        self,
        *args,
        loss_cls: ConfigType = dict(type='RankSortLoss'),
        reg_decoded_bbox: Optional[bool] = None,
        use_ohem: bool = False,
        **kwargs,
    ) -> None:
        if use_ohem:
            raise ValueError(
                f'{type(self).__name__} ranks every anchor of the batch: use_ohem must be False '
                "(the sampler is train_cfg.sampler, dict(type='PseudoSampler'))"
            )
        super().__init__(
            *args,
            loss_cls=loss_cls,
            reg_decoded_bbox=default_reg_decoded_bbox(loss_cls, reg_decoded_bbox),
            use_ohem=use_ohem,
            **kwargs,
        )

    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        coeff_preds: List[Tensor],
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None,
    ) -> Dict[str, Tensor]:
        """The Rank & Sort Loss of the batch; keeps what :meth:`get_positive_infos` needs.

        Args:
            cls_scores (list[Tensor]): per level, shape (N, num_base_priors * C, H, W).
            bbox_preds (list[Tensor]): per level, shape (N, num_base_priors * 4, H, W).
            coeff_preds (list[Tensor]): per level, shape (N, num_base_priors * num_protos, H, W).
            batch_gt_instances (list[:obj:`InstanceData`]): ``bboxes`` and ``labels`` of every
                image.
            batch_img_metas (list[dict]): meta information of every image.
            batch_gt_instances_ignore (list[:obj:`InstanceData`], optional): boxes to ignore.

        Returns:
            dict[str, Tensor]: the terms of :class:`RankSortLoss`.
        """
        losses = super().loss_by_feat(
            cls_scores, bbox_preds, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore
        )
        self._raw_positive_infos.update(
            coeff_preds=coeff_preds,
            cls_scores=cls_scores,
            balance_target=(losses['loss_rank'] + losses['loss_sort']).detach(),
        )
        return losses

    def get_positive_infos(self) -> InstanceList:
        """YOLACTHead's positives of each image with their ``weights`` (P_i, ) and the metainfo
        ``balance_target`` (shape ()), after :meth:`loss_by_feat`."""
        infos = super().get_positive_infos()
        num_imgs = len(infos)
        logits = torch.cat(
            [
                score.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.cls_out_channels)
                for score in self._raw_positive_infos['cls_scores']
            ],
            1,
        )
        balance_target = self._raw_positive_infos['balance_target']
        for image_logits, info in zip(logits, infos):
            info.weights = image_logits[info.pos_inds].detach().float().amax(1).sigmoid()
            info.set_metainfo(dict(balance_target=balance_target))
        return infos

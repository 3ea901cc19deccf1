"""The PAA head of Rank & Sort Loss (RS-PAA): PAAHead's probabilistic anchor assignment, a
ranking loss instead of its Focal, GIoU and IoU losses, no IoU branch."""

from typing import Dict, List, Optional, Tuple

import torch
from mmcv.cnn import Scale
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.dense_heads import PAAHead
from mmdet.models.layers import multiclass_nms
from mmdet.models.utils import levels_to_images, multi_apply
from mmdet.registry import MODELS
from mmdet.structures.bbox import cat_boxes, get_box_tensor
from mmdet.utils import ConfigType, InstanceList, OptConfigType, OptInstanceList

from ..utils import (
    check_finite_outputs,
    check_gt_instances,
    check_ranking_loss,
    ranking_labels,
    refuse_loss_bbox,
    sigmoid_loss_cfg,
)
from .ranking_atss_head import centerness_free_forward


@MODELS.register_module()
class RankingPAAHead(PAAHead):
    """PAA's head trained with Rank & Sort Loss (or aLRP Loss), as RS-PAA.

    The targets are PAAHead's: the assigner's candidates of each ground-truth box are scored by
    ``score_loss_cls + score_loss_bbox`` (the RS code scores them with Focal Loss (gamma 2,
    alpha 0.25) plus GIoU Loss, both of weight 1, and so do the defaults), a two-component
    Gaussian mixture of those scores (scikit-learn) keeps the positives, and the rest become
    negatives. Then one ranking loss (``loss_cls``) over every anchor and class of the batch
    (anchors of label weight 0: -1) with the positives' boxes decoded by the head's
    ``bbox_coder`` (float32) and their gt boxes (``reg_decoded_bbox``). There is no IoU branch:
    prediction ranks by the sigmoid scores alone (no sqrt(score x IoU)), then per-class NMS and
    PAA's score voting.

    Args:
        loss_cls (dict): config of the ranking loss. Defaults to ``dict(type='RankSortLoss')``.
        loss_bbox (dict, optional): must be None (the ranking loss regresses).
        score_loss_cls (dict): the classification loss of the assignment scores. Defaults to
            Focal Loss (gamma 2, alpha 0.25, weight 1).
        score_loss_bbox (dict): the box loss of the assignment scores. Defaults to GIoU Loss of
            weight 1.
        reg_decoded_bbox (bool): must be True (PAAHead compares decoded boxes with the gt
            boxes). Defaults to True.
        **kwargs: the arguments of :class:`PAAHead` (``loss_centerness`` is not used).
    """

    #: The registered names of the losses the head accepts (those of decoded boxes).
    loss_types = ('RankSortLoss', 'aLRPLoss')

    def __init__(
        self,
        *args,
        loss_cls: ConfigType = dict(type='RankSortLoss'),
        loss_bbox: OptConfigType = None,
        score_loss_cls: ConfigType = dict(
            type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0
        ),
        score_loss_bbox: ConfigType = dict(type='GIoULoss', loss_weight=1.0),
        reg_decoded_bbox: bool = True,
        **kwargs,
    ) -> None:
        refuse_loss_bbox(type(self).__name__, loss_bbox)
        if not reg_decoded_bbox:
            raise ValueError(
                f'{type(self).__name__} regresses decoded boxes: reg_decoded_bbox must be True'
            )
        super().__init__(
            *args, loss_cls=sigmoid_loss_cfg(loss_cls), reg_decoded_bbox=True, **kwargs
        )
        check_ranking_loss(self, self.loss_types)
        self.loss_bbox = None
        self.loss_centerness = None
        self.score_loss_cls = MODELS.build(score_loss_cls)
        self.score_loss_bbox = MODELS.build(score_loss_bbox)

    def _init_layers(self) -> None:
        super()._init_layers()
        del self.atss_centerness

    def forward_single(self, x: Tensor, scale: Scale) -> Tuple[Tensor, Tensor]:
        """Logits and deltas of one level (:func:`centerness_free_forward`)."""
        return centerness_free_forward(self, x, scale)

    def get_pos_loss(
        self,
        anchors: List[Tensor],
        cls_score: Tensor,
        bbox_pred: Tensor,
        label: Tensor,
        label_weight: Tensor,
        bbox_target: Tensor,
        bbox_weight: Tensor,
        pos_inds: Tensor,
    ) -> Tuple[Tensor]:
        """The assignment score of each candidate of one image: ``score_loss_cls`` summed over
        the classes plus ``score_loss_bbox`` of its decoded box, unreduced.

        Args:
            anchors (list[Tensor]): per level, the image's anchors (A_l, 4).
            cls_score (Tensor): shape (A, C), logits; bbox_pred (A, 4), deltas.
            label, label_weight (Tensor): shape (A, ); bbox_target, bbox_weight (A, 4).
            pos_inds (Tensor): shape (K, ), the candidates (the assigner's positives).

        Returns:
            tuple[Tensor]: the scores, shape (K, ).
        """
        if not len(pos_inds):
            return (cls_score.new_zeros(0),)
        pos_anchors = get_box_tensor(cat_boxes(anchors))[pos_inds]
        pos_boxes = self.bbox_coder.decode(pos_anchors, bbox_pred[pos_inds])
        cls_losses = self.score_loss_cls(
            cls_score[pos_inds],
            label[pos_inds],
            label_weight[pos_inds],
            avg_factor=1.0,
            reduction_override='none',
        )
        box_losses = self.score_loss_bbox(
            pos_boxes,
            bbox_target[pos_inds],
            bbox_weight[pos_inds],
            avg_factor=1.0,
            reduction_override='none',
        )
        return (cls_losses.sum(-1) + box_losses,)

    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None,
    ) -> Dict[str, Tensor]:
        """The ranking loss of the batch on PAA's targets, after the ground truth (labels in
        0 .. C-1, boxes with x2 >= x1 and y2 >= y1) and the positives' regression outputs
        (finite) are checked.

        Args:
            cls_scores (list[Tensor]): per level, shape (N, num_base_priors * C, H, W).
            bbox_preds (list[Tensor]): per level, shape (N, num_base_priors * 4, H, W).
            batch_gt_instances (list[:obj:`InstanceData`]): ``bboxes`` and ``labels`` of every
                image.
            batch_img_metas (list[dict]): meta information of every image.
            batch_gt_instances_ignore (list[:obj:`InstanceData`], optional): boxes to ignore.

        Returns:
            dict[str, Tensor]: the terms of ``loss_cls`` (see :class:`RankSortLoss`).
        """
        check_gt_instances(batch_gt_instances, self.num_classes, batch_img_metas)
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        anchor_list, valid_flag_list = self.get_anchors(
            featmap_sizes, batch_img_metas, device=cls_scores[0].device
        )
        labels, label_weights, bbox_targets, bbox_weights, pos_inds, pos_gt_inds = self.get_targets(
            anchor_list,
            valid_flag_list,
            batch_gt_instances,
            batch_img_metas,
            batch_gt_instances_ignore,
        )
        logits = [s.reshape(-1, self.cls_out_channels) for s in levels_to_images(cls_scores)]
        deltas = [p.reshape(-1, 4) for p in levels_to_images(bbox_preds)]
        with torch.no_grad():
            (scores,) = multi_apply(
                self.get_pos_loss,
                anchor_list,
                logits,
                deltas,
                labels,
                label_weights,
                bbox_targets,
                bbox_weights,
                pos_inds,
            )
            labels, label_weights, _, _ = multi_apply(
                self.paa_reassign,
                scores,
                labels,
                label_weights,
                bbox_weights,
                pos_inds,
                pos_gt_inds,
                anchor_list,
            )
        labels = torch.cat(labels)
        anchors = torch.cat([get_box_tensor(cat_boxes(a)) for a in anchor_list])
        deltas = torch.cat(deltas)
        pos = torch.nonzero(labels < self.num_classes).squeeze(1)
        pos_deltas = deltas[pos]
        check_finite_outputs(
            'the regression outputs (bbox_preds) of the positive priors', [pos_deltas]
        )
        pos_boxes = get_box_tensor(self.bbox_coder.decode(anchors[pos].float(), pos_deltas.float()))
        targets = ranking_labels(labels, pos, self.num_classes, torch.cat(label_weights) == 0)
        return self.loss_cls(
            torch.cat(logits), targets, pos_boxes, torch.cat(bbox_targets)[pos].float()
        )

    def _predict_by_feat_single(
        self,
        cls_score_list: List[Tensor],
        bbox_pred_list: List[Tensor],
        score_factor_list: List[Optional[Tensor]],
        mlvl_priors: List[Tensor],
        img_meta: dict,
        cfg: OptConfigType = None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> InstanceData:
        """One image's detections from the sigmoid scores (no score factor).

        Args:
            cls_score_list (list[Tensor]): per level, (num_base_priors * C, H, W) logits.
            bbox_pred_list (list[Tensor]): per level, (num_base_priors * 4, H, W) deltas.
            score_factor_list (list): unused (no IoU branch).
            mlvl_priors (list[Tensor]): per level, the anchors (A_l, 4).
            img_meta (dict): the image's meta information.
            cfg (dict, optional): ``nms_pre``, ``score_thr``, ``nms``, ``max_per_img``; the
                head's ``test_cfg`` if None.
            rescale (bool): map the boxes back to the original image. Defaults to False.
            with_nms (bool): must be True (as PAAHead's).

        Returns:
            :obj:`InstanceData`: ``bboxes`` (n, 4), ``scores`` (n, ), ``labels`` (n, ).
        """
        cfg = self.test_cfg if cfg is None else cfg
        nms_pre = cfg.get('nms_pre', -1)
        boxes, scores = [], []
        for cls_score, bbox_pred, priors in zip(cls_score_list, bbox_pred_list, mlvl_priors):
            level_scores = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels).sigmoid()
            level_deltas = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
            if 0 < nms_pre < level_scores.size(0):
                _, keep = level_scores.max(1).values.topk(nms_pre)
                priors, level_deltas, level_scores = (
                    priors[keep],
                    level_deltas[keep],
                    level_scores[keep],
                )
            decoded = self.bbox_coder.decode(priors, level_deltas, max_shape=img_meta['img_shape'])
            boxes.append(get_box_tensor(decoded))
            scores.append(level_scores)
        results = InstanceData(bboxes=torch.cat(boxes), scores=torch.cat(scores))
        return self._bbox_post_process(results, cfg, rescale, with_nms, img_meta)

    def _bbox_post_process(
        self,
        results: InstanceData,
        cfg: ConfigType,
        rescale: bool = False,
        with_nms: bool = True,
        img_meta: Optional[dict] = None,
    ) -> InstanceData:
        """Per-class NMS of the sigmoid scores (R, C) of ``results`` (a zero background column
        added for ``multiclass_nms``), then PAA's score voting if ``score_voting``; boxes mapped
        back to the original image with ``rescale``."""
        if rescale:
            results.bboxes /= results.bboxes.new_tensor(img_meta['scale_factor']).repeat((1, 2))
        scores = torch.cat([results.scores, results.scores.new_zeros(len(results.scores), 1)], 1)
        det_bboxes, det_labels = multiclass_nms(
            results.bboxes, scores, cfg.score_thr, cfg.nms, cfg.max_per_img
        )
        if self.with_score_voting and len(det_bboxes) > 0:
            det_bboxes, det_labels = self.score_voting(
                det_bboxes, det_labels, results.bboxes, scores, cfg.score_thr
            )
        return InstanceData(bboxes=det_bboxes[:, :-1], scores=det_bboxes[:, -1], labels=det_labels)

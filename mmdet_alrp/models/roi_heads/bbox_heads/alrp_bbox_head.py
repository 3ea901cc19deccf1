"""The RoI box head of aLRP Faster R-CNN."""
from typing import List, Optional

import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.layers import multiclass_nms
from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import ConfigType

from ...losses import aLRPLoss
from ...utils import alrp_head_loss, giou_loc_error
from ...utils.input_checks import check_ground_truth


@MODELS.register_module()
class aLRPBBoxHead(Shared2FCBBoxHead):
    """Two shared fcs with sigmoid classification and GIoU regression, trained with aLRP Loss
    (Oksuz et al., NeurIPS 2020).

    ``num_classes`` sigmoid logits per RoI, no background column. Every RoI the RoI head forwards
    (the sampler's positives and negatives; with a ``PseudoSampler``, every proposal the assigner
    does not ignore) enters one aLRP Loss of the batch with the head's own self-balance: a
    positive of class c has target 1 at column c and 0 elsewhere, a negative 0 everywhere. The
    regression of the gt class (or the class-agnostic one), decoded relative to the RoI, gives a
    positive's error ``(1 - GIoU(decoded box, gt box)) / (2 * (1 - tau))``. Prediction runs
    per-class NMS on the sigmoid scores.

    Args:
        loss_cls (dict): config of an :class:`aLRPLoss`; its ``loss_weight`` scales both terms.
            Defaults to ``dict(type='aLRPLoss')``.
        self_balance (dict): config of the :class:`SelfBalance` weight of the localisation
            part. Defaults to ``dict(type='SelfBalance', init_weight=50.)``.
        tau (float): positive IoU threshold normalising the localisation error, in [0, 1).
            Defaults to 0.5 (the R-CNN assigner's).
        reg_decoded_bbox (bool): must be True: the targets are the gt boxes themselves.
        **kwargs: further arguments of :class:`Shared2FCBBoxHead`. A ``loss_bbox`` is accepted
            and not used.
    """

    def __init__(self,
                 loss_cls: ConfigType = dict(type='aLRPLoss'),
                 self_balance: ConfigType = dict(type='SelfBalance', init_weight=50.),
                 tau: float = 0.5,
                 reg_decoded_bbox: bool = True,
                 **kwargs) -> None:
        if not 0 <= tau < 1:
            raise ValueError(f'tau must be in [0, 1), got {tau}')
        if not reg_decoded_bbox:
            raise ValueError('aLRPBBoxHead regresses decoded boxes: reg_decoded_bbox must be '
                             'True')
        super().__init__(loss_cls=loss_cls, reg_decoded_bbox=True, **kwargs)
        if not isinstance(self.loss_cls, aLRPLoss):
            raise ValueError(f'aLRPBBoxHead needs an aLRPLoss as loss_cls, got '
                             f'{type(self.loss_cls).__name__}')
        if not self.with_cls or not self.with_reg:
            raise ValueError('aLRPBBoxHead needs both a classifier and a regressor')
        # One sigmoid logit per class: no background column.
        self.fc_cls = MODELS.build(
            dict(self.cls_predictor_cfg, in_features=self.cls_last_dim,
                 out_features=self.num_classes))
        self.loss_bbox = None
        self.tau = tau
        self.self_balance = MODELS.build(self_balance)

    def loss_and_target(self,
                        cls_score: Tensor,
                        bbox_pred: Tensor,
                        rois: Tensor,
                        sampling_results: List[SamplingResult],
                        rcnn_train_cfg: ConfigDict,
                        concat: bool = True,
                        reduction_override: Optional[str] = None) -> dict:
        """:meth:`BBoxHead.loss_and_target`, after the ground truth of the positive RoIs is
        checked: a ``ValueError`` names the image and the label outside 0 .. C-1, or the box
        with x2 < x1 or y2 < y1 (or not finite)."""
        check_ground_truth([result.pos_gt_labels for result in sampling_results],
                           [get_box_tensor(result.pos_gt_bboxes) for result in sampling_results],
                           self.num_classes)
        return super().loss_and_target(cls_score, bbox_pred, rois, sampling_results,
                                       rcnn_train_cfg, concat, reduction_override)

    def loss(self,
             cls_score: Tensor,
             bbox_pred: Tensor,
             rois: Tensor,
             labels: Tensor,
             label_weights: Tensor,
             bbox_targets: Tensor,
             bbox_weights: Tensor,
             reduction_override: Optional[str] = None) -> dict:
        """aLRP Loss of the batch of RoIs (``label_weights``, ``bbox_weights`` and
        ``reduction_override`` play no part: aLRP Loss weighs by rank).

        Args:
            cls_score (Tensor): shape (R, C), logits.
            bbox_pred (Tensor): shape (R, C * 4), or (R, 4) if class agnostic, box deltas.
            rois (Tensor): shape (R, 5), (batch index, x1, y1, x2, y2).
            labels (Tensor): shape (R, ), gt class of positives, C for negatives.
            label_weights (Tensor): shape (R, ), unused.
            bbox_targets (Tensor): shape (R, 4), gt boxes of positives (decoded targets).
            bbox_weights (Tensor): shape (R, 4), unused.
            reduction_override (str, optional): unused.

        Returns:
            dict[str, Tensor]: ``loss_cls`` and ``loss_bbox`` (weighted); to log, ``alrp_cls``,
            ``alrp_loc`` (unweighted), ``sb_weight`` and ``num_pos``.
        """
        positive = labels < self.num_classes
        pos_labels = labels[positive]
        targets = torch.zeros_like(cls_score, dtype=torch.long)
        targets[positive, pos_labels] = 1
        if self.reg_class_agnostic:
            pos_deltas = bbox_pred[positive]
        else:
            pos_deltas = bbox_pred.view(bbox_pred.size(0), self.num_classes, -1)[positive,
                                                                                  pos_labels]
        pred_boxes = get_box_tensor(self.bbox_coder.decode(rois[positive, 1:], pos_deltas))
        loc_errors = giou_loc_error(pred_boxes, bbox_targets[positive], self.tau)
        return alrp_head_loss(self.loss_cls, self.self_balance, cls_score, targets, loc_errors)

    def _predict_by_feat_single(self,
                                roi: Tensor,
                                cls_score: Tensor,
                                bbox_pred: Tensor,
                                img_meta: dict,
                                rescale: bool = False,
                                rcnn_test_cfg: Optional[ConfigDict] = None) -> InstanceData:
        """Boxes of one image from sigmoid scores.

        Args:
            roi (Tensor): shape (R, 5), the image's RoIs.
            cls_score (Tensor): shape (R, C), logits.
            bbox_pred (Tensor): shape (R, C * 4) (or (R, 4)), box deltas.
            img_meta (dict): the image's meta information.
            rescale (bool): map the boxes back to the original image. Defaults to False.
            rcnn_test_cfg (:obj:`ConfigDict`, optional): ``score_thr``, ``nms``,
                ``max_per_img``; None returns every RoI's boxes and scores.

        Returns:
            :obj:`InstanceData`: with ``rcnn_test_cfg``, ``bboxes`` (K, 4), ``scores`` (K, ) in
            [0, 1] and ``labels`` (K, ) after per-class NMS; without, ``bboxes`` (R, C * 4) and
            ``scores`` (R, C).
        """
        # The parent decodes and rescales the boxes (its softmax scores are discarded).
        results = super()._predict_by_feat_single(
            roi, cls_score, bbox_pred, img_meta, rescale=rescale, rcnn_test_cfg=None)
        scores = cls_score.sigmoid()
        if rcnn_test_cfg is None:
            results.scores = scores
            return results
        # multiclass_nms takes a trailing background column: a zero one.
        det_bboxes, det_labels = multiclass_nms(
            results.bboxes, torch.cat([scores, scores.new_zeros(scores.size(0), 1)], 1),
            rcnn_test_cfg.score_thr, rcnn_test_cfg.nms, rcnn_test_cfg.max_per_img)
        results = InstanceData()
        results.bboxes = det_bboxes[:, :-1]
        results.scores = det_bboxes[:, -1]
        results.labels = det_labels
        return results

"""Turns an RoI box head of mmdet (BBoxHead) into a ranking-loss head."""

from typing import List, Optional

import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import ConfigType, OptConfigType

from ...utils import (
    RANKING_LOSSES,
    check_finite_outputs,
    check_ground_truth,
    check_ranking_loss,
    ranking_labels,
    refuse_loss_bbox,
    sigmoid_loss_cfg,
)


class RoIRankingAdapter:
    """The loss of a ranking-loss box head (aLRPLoss, APLoss, RankSortLoss) on BBoxHead's own
    RoI targets.

    Mixed in before a ``BBoxHead`` (``Shared2FCBBoxHead``, say). Every RoI the RoI head forwards
    (the sampler's positives and negatives; with a ``PseudoSampler``, every proposal the
    assigner does not ignore) enters one ranking loss of the batch: a positive of class c has
    label 1 at column c and 0 elsewhere, a negative 0 everywhere. The regression of the gt class
    (or the class-agnostic one) of the positives, decoded relative to their RoIs (float32), and
    their gt boxes go to ``loss_cls``. The loss's ``get_cls_channels`` gives the classifier one
    sigmoid logit per class (no background column), its ``get_activation`` BBoxHead's
    prediction (and CascadeRoIHead's refinement) the sigmoid scores with a zero background
    column. The loss regresses (APLoss with its own ``loss_bbox``, on the decoded boxes): the
    head's ``loss_bbox`` is None.

    Args:
        loss_cls (dict): config of the ranking loss; ``use_sigmoid`` defaults to True.
        reg_decoded_bbox (bool): must be True: the targets are the gt boxes themselves.
        loss_bbox (dict, optional): must be None (the ranking loss regresses).
        **kwargs: the arguments of the head.
    """

    #: The registered names of the losses the head accepts.
    loss_types = RANKING_LOSSES

    def __init__(
        self,
        *args,
        loss_cls: ConfigType = dict(type='aLRPLoss'),
        reg_decoded_bbox: bool = True,
        loss_bbox: OptConfigType = None,
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
        if not self.with_cls or not self.with_reg:
            raise ValueError(f'{type(self).__name__} needs both a classifier and a regressor')
        self.loss_bbox = None

    def loss_and_target(
        self,
        cls_score: Tensor,
        bbox_pred: Tensor,
        rois: Tensor,
        sampling_results: List[SamplingResult],
        rcnn_train_cfg: ConfigDict,
        concat: bool = True,
        reduction_override: Optional[str] = None,
    ) -> dict:
        """:meth:`BBoxHead.loss_and_target`, after the ground truth of the positive RoIs is
        checked: a ``ValueError`` names the image and the label outside 0 .. C-1, or the box
        with x2 < x1 or y2 < y1 (or not finite)."""
        check_ground_truth(
            [result.pos_gt_labels for result in sampling_results],
            [get_box_tensor(result.pos_gt_bboxes) for result in sampling_results],
            self.num_classes,
        )
        return super().loss_and_target(
            cls_score, bbox_pred, rois, sampling_results, rcnn_train_cfg, concat, reduction_override
        )

    def loss(
        self,
        cls_score: Tensor,
        bbox_pred: Tensor,
        rois: Tensor,
        labels: Tensor,
        label_weights: Tensor,
        bbox_targets: Tensor,
        bbox_weights: Tensor,
        reduction_override: Optional[str] = None,
    ) -> dict:
        """The ranking loss of the batch of RoIs (``label_weights``, ``bbox_weights`` and
        ``reduction_override`` play no part: the loss weighs by rank).

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
            dict[str, Tensor]: the terms of ``loss_cls`` (see :class:`aLRPLoss`,
            :class:`RankSortLoss`).
        """
        pos = torch.nonzero(labels < self.num_classes).squeeze(1)
        pos_labels = labels[pos]
        if self.reg_class_agnostic:
            pos_deltas = bbox_pred[pos]
        else:
            pos_deltas = bbox_pred.view(bbox_pred.size(0), self.num_classes, -1)[pos, pos_labels]
        check_finite_outputs(
            'the regression outputs (bbox_pred) of the positive RoIs', [pos_deltas]
        )
        pos_boxes = get_box_tensor(
            self.bbox_coder.decode(rois[pos, 1:].float(), pos_deltas.float())
        )
        return self.loss_cls(
            cls_score,
            ranking_labels(labels, pos, self.num_classes),
            pos_boxes,
            bbox_targets[pos].float(),
        )

    def _predict_by_feat_single(
        self,
        roi: Tensor,
        cls_score: Tensor,
        bbox_pred: Tensor,
        img_meta: dict,
        rescale: bool = False,
        rcnn_test_cfg: Optional[ConfigDict] = None,
    ) -> InstanceData:
        """BBoxHead's boxes of one image, scored by the loss's activation (sigmoids); without
        ``rcnn_test_cfg`` the scores are (R, C), without the zero background column.

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
        results = super()._predict_by_feat_single(
            roi, cls_score, bbox_pred, img_meta, rescale, rcnn_test_cfg
        )
        if rcnn_test_cfg is None:  # the activation's zero background column
            results.scores = results.scores[:, :-1]
        return results

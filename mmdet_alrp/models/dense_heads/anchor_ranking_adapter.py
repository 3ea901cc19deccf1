"""Turns an anchor head of mmdet (MaxIoU family, or ATSSHead) into a ranking-loss head."""

from typing import Dict, List

import torch
from torch import Tensor

from mmdet.models.dense_heads import ATSSHead
from mmdet.models.task_modules.assigners import ATSSAssigner
from mmdet.structures.bbox import cat_boxes, get_box_tensor
from mmdet.utils import ConfigType, InstanceList, OptConfigType, OptInstanceList

from ..utils import (
    RANKING_LOSSES,
    check_finite_outputs,
    check_gt_instances,
    check_ranking_loss,
    ranking_labels,
    refuse_loss_bbox,
    sigmoid_loss_cfg,
)


class AnchorRankingAdapter:
    """The loss of a ranking-loss head (aLRPLoss, APLoss, RankSortLoss) on an anchor head's
    own targets.

    Mixed in before an ``AnchorHead`` (``RetinaHead``, ``RPNHead``: ``train_cfg.assigner`` of the
    MaxIoU family) or an ``ATSSHead`` (``ATSSAssigner``). ``loss_by_feat`` takes the head's
    ``get_anchors`` and ``get_targets``, flattens the batch image by image, level by level, in
    the order of the anchors, and hands its logits, 1 / 0 / -1 labels (label weight 0, e.g. the
    assigner's ignore band or anchors outside the image: -1 for every class) and the positives'
    boxes to ``loss_cls``: decoded by the head's ``bbox_coder`` (float32) for a loss with
    ``decoded_boxes`` (aLRPLoss, RankSortLoss), in the head's target space otherwise
    (APLoss). The loss regresses: the head's ``loss_bbox`` is None.

    Args:
        loss_cls (dict): config of the ranking loss; ``use_sigmoid`` defaults to True.
        loss_bbox (dict, optional): must be None (the ranking loss regresses).
        **kwargs: the arguments of the head.
    """

    #: The registered names of the losses the head accepts.
    loss_types = RANKING_LOSSES

    def __init__(
        self,
        *args,
        loss_cls: ConfigType = dict(type='aLRPLoss'),
        loss_bbox: OptConfigType = None,
        **kwargs,
    ) -> None:
        refuse_loss_bbox(type(self).__name__, loss_bbox)
        super().__init__(*args, loss_cls=sigmoid_loss_cfg(loss_cls), **kwargs)
        check_ranking_loss(self, self.loss_types)
        atss_assigner = isinstance(getattr(self, 'assigner', None), ATSSAssigner)
        if isinstance(self, ATSSHead) and hasattr(self, 'assigner') and not atss_assigner:
            raise ValueError(
                f"{type(self).__name__} takes ATSSHead's targets, which need an "
                'ATSSAssigner: use a RetinaNet head (RankingRetinaHead, aLRPRetinaHead) for the '
                'MaxIoU family'
            )
        if atss_assigner and not isinstance(self, ATSSHead):
            raise ValueError(
                f"ATSSAssigner needs the anchors of each level (ATSSHead's "
                f'targets), which {type(self).__name__} has not: use an ATSS head '
                '(RankingATSSHead, aLRPATSSHead)'
            )
        self.loss_bbox = None

    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None,
    ) -> Dict[str, Tensor]:
        """The ranking loss of the batch, after the ground truth (labels in 0 .. C-1, boxes with
        x2 >= x1 and y2 >= y1) and the positives' regression outputs (finite) are checked.

        Args:
            cls_scores (list[Tensor]): per level, shape (N, num_base_priors * C, H, W).
            bbox_preds (list[Tensor]): per level, shape (N, num_base_priors * 4, H, W).
            batch_gt_instances (list[:obj:`InstanceData`]): ``bboxes`` and ``labels`` of every
                image.
            batch_img_metas (list[dict]): meta information of every image.
            batch_gt_instances_ignore (list[:obj:`InstanceData`], optional): boxes to ignore.

        Returns:
            dict[str, Tensor]: the terms of ``loss_cls`` (see :class:`aLRPLoss`,
            :class:`APLoss`).
        """
        check_gt_instances(batch_gt_instances, self.num_classes, batch_img_metas)
        num_imgs = len(batch_img_metas)
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        anchor_list, valid_flag_list = self.get_anchors(
            featmap_sizes, batch_img_metas, device=cls_scores[0].device
        )
        # before get_targets: ATSSHead's concatenates each image's anchors in place
        anchors = torch.cat([get_box_tensor(cat_boxes(a)) for a in anchor_list])
        # AnchorHead's targets: (labels, label weights, bbox targets, bbox weights, avg factor),
        # per level (N, A_l), ...; ATSSHead's have the anchors first.
        targets = self.get_targets(
            anchor_list,
            valid_flag_list,
            batch_gt_instances,
            batch_img_metas,
            batch_gt_instances_ignore,
        )
        labels, label_weights, bbox_targets = targets[-5:-2]
        labels = torch.cat(labels, 1).reshape(-1)
        ignored = torch.cat(label_weights, 1).reshape(-1) == 0
        bbox_targets = torch.cat(bbox_targets, 1).reshape(-1, bbox_targets[0].size(-1))

        def flatten(maps: List[Tensor], channels: int) -> Tensor:
            return torch.cat(
                [m.permute(0, 2, 3, 1).reshape(num_imgs, -1, channels) for m in maps], 1
            ).reshape(-1, channels)

        logits = flatten(cls_scores, self.cls_out_channels)
        deltas = flatten(bbox_preds, self.bbox_coder.encode_size)
        pos = torch.nonzero(labels < self.num_classes).squeeze(1)
        pos_deltas = deltas[pos]
        check_finite_outputs(
            'the regression outputs (bbox_preds) of the positive priors', [pos_deltas]
        )
        targets = ranking_labels(labels, pos, self.num_classes, ignored)
        if not (self.loss_cls.decoded_boxes or self.reg_decoded_bbox):
            return self.loss_cls(logits, targets, pos_deltas, bbox_targets[pos])
        pos_anchors = anchors[pos].float()
        pos_boxes = get_box_tensor(self.bbox_coder.decode(pos_anchors, pos_deltas.float()))
        pos_targets = bbox_targets[pos].float()
        if not self.reg_decoded_bbox:
            pos_targets = get_box_tensor(self.bbox_coder.decode(pos_anchors, pos_targets))
        return self.loss_cls(logits, targets, pos_boxes, pos_targets)

"""Turns a point head of mmdet (FoveaHead, FCOSHead) into a ranking-loss head."""

import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from mmdet.models.dense_heads import FCOSHead
from mmdet.structures.bbox import get_box_tensor
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

#: Bound of a predicted FoveaBox log distance (as DeltaXYWHBBoxCoder bounds dw, dh): exp cannot
#: overflow.
MAX_LOG_DISTANCE = math.log(1000.0 / 16)


class PointRankingAdapter:
    """The loss of a ranking-loss head (aLRPLoss, APLoss, RankSortLoss) on a point head's own
    targets.

    Mixed in before a ``FoveaHead`` or an ``FCOSHead``. ``loss_by_feat`` takes the head's
    ``get_targets`` on its ``prior_generator``'s points, flattens the batch level by level,
    image by image, point by point (the order of those targets) and hands its logits, 1 / 0
    labels (neither head has an ignore band) and the positives' regression to ``loss_cls``.
    For a loss with ``decoded_boxes`` (aLRPLoss, RankSortLoss) the boxes are decoded in
    float32: FoveaHead's log distances in units of the level's base edge (bounded by
    :data:`MAX_LOG_DISTANCE`, not clipped to the image); FCOSHead's distances, times the
    level's stride with ``norm_on_bbox``, by its ``bbox_coder``. Otherwise (APLoss) the
    regression stays in the head's target space. The loss regresses: the head's ``loss_bbox``
    is None.

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
        self.loss_bbox = None

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """AnchorFreeHead's, with the keys of ``loss_cls`` (its self-balance buffers) kept out
        of the renaming by which it reads state dicts without a version (any ``*cls`` module
        of the head becomes ``conv_cls``); ``loss_cls`` then loads them itself."""
        loss_keys = [key for key in state_dict if key.startswith(f'{prefix}loss_cls.')]
        kept = {key: state_dict.pop(key) for key in loss_keys}
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        state_dict.update(kept)

    def point_targets(
        self, points: List[Tensor], featmap_sizes: List[tuple], batch_gt_instances: InstanceList
    ) -> Tuple[Tensor, Tensor, List[float]]:
        """The head's own targets of the batch and each level's unit of the regression.

        Returns:
            tuple: labels (A, ) (``num_classes`` for background), regression targets (A, 4),
            flattened level by level, image by image; per level the length that the
            regression's distances are measured in (base edge, stride or 1 pixel).
        """
        if isinstance(self, FCOSHead):
            labels, bbox_targets = self.get_targets(points, batch_gt_instances)
            units = self.strides if self.norm_on_bbox else [1.0] * len(points)
            return torch.cat(labels), torch.cat(bbox_targets), units
        labels, bbox_targets = self.get_targets(batch_gt_instances, featmap_sizes, points)
        return labels, bbox_targets, self.base_edge_list

    def decode(self, points: Tensor, units: Tensor, regression: Tensor) -> Tensor:
        """Boxes (P, 4), (x1, y1, x2, y2), of the points (P, 2) from their regression outputs
        or targets (P, 4) in units (P, ) of the level (see :meth:`point_targets`)."""
        if isinstance(self, FCOSHead):
            return get_box_tensor(self.bbox_coder.decode(points, regression * units[:, None]))
        distances = regression.clamp(max=MAX_LOG_DISTANCE).exp() * units[:, None]
        return torch.cat([points - distances[:, :2], points + distances[:, 2:]], 1)

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
            cls_scores (list[Tensor]): per level, shape (N, C, H, W).
            bbox_preds (list[Tensor]): per level, shape (N, 4, H, W).
            batch_gt_instances (list[:obj:`InstanceData`]): ``bboxes`` and ``labels`` of every
                image.
            batch_img_metas (list[dict]): meta information of every image.
            batch_gt_instances_ignore (list[:obj:`InstanceData`], optional): not used (as by
                the heads' own losses).

        Returns:
            dict[str, Tensor]: the terms of ``loss_cls`` (see :class:`aLRPLoss`,
            :class:`APLoss`).
        """
        check_gt_instances(batch_gt_instances, self.num_classes, batch_img_metas)
        num_imgs = cls_scores[0].size(0)
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        points = self.prior_generator.grid_priors(
            featmap_sizes, dtype=torch.float32, device=cls_scores[0].device
        )
        labels, bbox_targets, level_units = self.point_targets(
            points, featmap_sizes, batch_gt_instances
        )
        logits = torch.cat(
            [score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels) for score in cls_scores]
        )
        regression = torch.cat([pred.permute(0, 2, 3, 1).reshape(-1, 4) for pred in bbox_preds])
        pos = torch.nonzero(labels < self.num_classes).squeeze(1)
        pos_regression = regression[pos]
        check_finite_outputs(
            'the regression outputs (bbox_preds) of the positive priors', [pos_regression]
        )
        targets = ranking_labels(labels, pos, self.num_classes)
        if not self.loss_cls.decoded_boxes:
            return self.loss_cls(logits, targets, pos_regression, bbox_targets[pos])
        pos_points = torch.cat([p.repeat(num_imgs, 1) for p in points])[pos]
        pos_units = torch.cat(
            [p.new_full((num_imgs * p.size(0),), unit) for p, unit in zip(points, level_units)]
        )[pos]
        return self.loss_cls(
            logits,
            targets,
            self.decode(pos_points, pos_units, pos_regression.float()),
            self.decode(pos_points, pos_units, bbox_targets[pos].float()),
        )

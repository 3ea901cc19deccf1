"""What the dense heads of the ranking-based losses (aLRP Loss, AP Loss) share."""
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import InstanceList, OptInstanceList

from ..utils.input_checks import check_finite_outputs, check_ground_truth


@dataclass
class RankingTargets:
    """The predictions of a batch flattened over images, levels and priors, with their targets.

    A is the number of priors of the batch (all images and levels), C the number of classes and
    P the number of positive priors, in index order of the flattened priors.

    Attributes:
        logits (Tensor): shape (A, C), one sigmoid logit per class.
        labels (Tensor): shape (A, C), int8: 1 at the class of a positive prior, 0 for the other
            classes and for negatives, -1 for every class of an ignored prior.
        pos_bbox_preds (Tensor): shape (P, 4), the positives' regression outputs in the space of
            the head's ``loss_bbox`` (encoded, or decoded boxes with ``reg_decoded_bbox``).
        pos_bbox_targets (Tensor): shape (P, 4), their targets in the same space.
        pos_decoded_preds (Tensor): shape (P, 4), float32, the predicted boxes (x1, y1, x2, y2).
        pos_decoded_targets (Tensor): shape (P, 4), float32, the target boxes (x1, y1, x2, y2).
    """
    logits: Tensor
    labels: Tensor
    pos_bbox_preds: Tensor
    pos_bbox_targets: Tensor
    pos_decoded_preds: Tensor
    pos_decoded_targets: Tensor

    @property
    def num_pos(self) -> int:
        return self.pos_bbox_preds.size(0)


def ranking_labels(labels: Tensor, pos: Tensor, num_classes: int,
                   ignored: Optional[Tensor] = None) -> Tensor:
    """One-hot labels of a ranking loss from mmdet's class labels.

    Args:
        labels (Tensor): shape (A, ), int64 class of every prior, ``num_classes`` for background.
        pos (Tensor): shape (P, ), int64 indices of the positive priors.
        num_classes (int): number of classes C.
        ignored (Tensor, optional): shape (A, ), bool, priors that take no part in the loss.

    Returns:
        Tensor: shape (A, C), int8 with 1 (positive), 0 (negative) and -1 (ignored).
    """
    onehot = labels.new_zeros((labels.size(0), num_classes), dtype=torch.int8)
    onehot[pos, labels[pos]] = 1
    if ignored is not None:
        onehot[ignored] = -1
    return onehot


def use_sigmoid_logits(head: nn.Module) -> None:
    """Give ``head`` one sigmoid logit per class and no background channel.

    The ranking losses take no ``use_sigmoid`` argument, so mmdet's heads would read their
    config as a softmax classifier. Called in ``_init_layers`` before the layers are built;
    prediction then uses sigmoid scores.
    """
    head.use_sigmoid_cls = True
    head.cls_out_channels = head.num_classes


class RankingHeadMixin:
    """The ``loss_by_feat`` of the ranking-loss heads (:class:`aLRPHeadMixin`,
    :class:`APLossHeadMixin`): the batch flattened by the head's ``ranking_targets`` (see
    :class:`RankingRetinaHead`, :class:`RankingFoveaHead`), then the loss of
    :meth:`loss_by_ranking_targets`."""

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None) -> Dict[str, Tensor]:
        """The loss of the batch, after the ground truth (labels in 0 .. C-1, boxes with
        x2 >= x1 and y2 >= y1) and the positives' regression outputs (finite) are checked.

        Args:
            cls_scores (list[Tensor]): per level, shape (N, num_base_priors * C, H, W).
            bbox_preds (list[Tensor]): per level, shape (N, num_base_priors * 4, H, W).
            batch_gt_instances (list[:obj:`InstanceData`]): ``bboxes`` and ``labels`` of every
                image.
            batch_img_metas (list[dict]): meta information of every image.
            batch_gt_instances_ignore (list[:obj:`InstanceData`], optional): boxes to ignore.

        Returns:
            dict[str, Tensor]: see :meth:`loss_by_ranking_targets`.

        Raises:
            ValueError: naming the image and the ground-truth label or box that is out of
                range, or NaN or Inf in the positives' regression outputs.
        """
        check_ground_truth([gt.labels for gt in batch_gt_instances],
                           [get_box_tensor(gt.bboxes) for gt in batch_gt_instances],
                           self.num_classes, batch_img_metas)
        targets = self.ranking_targets(cls_scores, bbox_preds, batch_gt_instances,
                                       batch_img_metas, batch_gt_instances_ignore)
        check_finite_outputs('the regression outputs (bbox_preds) of the positive priors',
                             [targets.pos_bbox_preds])
        return self.loss_by_ranking_targets(targets)

    def loss_by_ranking_targets(self, targets: RankingTargets) -> Dict[str, Tensor]:
        """The loss of the flattened batch.

        Args:
            targets (:obj:`RankingTargets`): the batch, from ``ranking_targets``.

        Returns:
            dict[str, Tensor]: the loss terms and the values to log.
        """
        raise NotImplementedError

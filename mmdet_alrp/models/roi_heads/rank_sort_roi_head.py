"""The RoI head of RS Mask R-CNN: the box head's scores and ranking loss feed the mask loss."""

import copy
from typing import List, Tuple

import torch
from torch import Tensor

from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import InstanceList

from ..losses.rank_sort_loss import RankSortLoss
from .mask_heads.ranking_fcn_mask_head import RankingFCNMaskHead
from .ranking_roi_head import RankingRoIHead


def keep_positives(result: SamplingResult, keep: Tensor) -> SamplingResult:
    """A copy of ``result`` whose positives are those at ``keep`` (indices into its positives,
    (k, ) int64, increasing); its negatives are unchanged."""
    kept = copy.copy(result)
    keep = keep.to(result.pos_inds.device)
    kept.pos_inds = result.pos_inds[keep]
    kept.pos_priors = result.pos_priors[keep]
    kept.pos_is_gt = result.pos_is_gt[keep]
    kept.pos_assigned_gt_inds = result.pos_assigned_gt_inds[keep]
    kept.pos_gt_labels = result.pos_gt_labels[keep]
    kept.pos_gt_bboxes = result.pos_gt_bboxes[keep]
    kept.num_pos = max(keep.numel(), 1)
    return kept


@MODELS.register_module()
class RankSortRoIHead(RankingRoIHead):
    """The RoI head of RS Mask R-CNN (Oksuz et al., ICCV 2021): a :class:`RankingBBoxHead`
    with :class:`RankSortLoss` and a :class:`RankingFCNMaskHead`.

    Training: the batch's ground truth is checked as :class:`RankingRoIHead` checks it, every
    image's proposals are assigned and sampled (a ``KeepAllSampler`` keeps them all), the box
    head's loss is computed on all RoIs of the batch, then the mask head's on at
    most ``max_train_masks`` positive RoIs of the batch: all of them if there are no more, else
    that many drawn at random over the batch (each positive equally likely, any image). Each
    mask's weight is the detached highest class score (sigmoid) of its own RoI's classification
    logits, and the mask loss is balanced to the box head's ``loss_rank + loss_sort`` (see
    :class:`RankingFCNMaskHead`). Prediction is StandardRoIHead's.

    As the RS code: at most 200 masks a batch, drawn at random. Deliberately different: the
    weights stay with their own RoIs when the draw takes positives of several images (the RS
    code re-orders the masks image by image but not their weights); the mask features may also
    come from the box features (no ``mask_roi_extractor``).

    Args:
        max_train_masks (int): the most positive RoIs of a batch the mask head trains on, >= 1.
            Defaults to 200.
        **kwargs: the arguments of :class:`StandardRoIHead`; ``bbox_head`` a box head whose
            ``loss_cls`` is a :class:`RankSortLoss`, ``mask_head`` (optional) a
            :class:`RankingFCNMaskHead`.
    """

    def __init__(self, *args, max_train_masks: int = 200, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        name = type(self).__name__
        if isinstance(max_train_masks, bool) or not isinstance(max_train_masks, int):
            raise ValueError(f'{name}: max_train_masks must be an int, got {max_train_masks!r}')
        if max_train_masks < 1:
            raise ValueError(f'{name}: max_train_masks must be >= 1, got {max_train_masks}')
        self.max_train_masks = max_train_masks
        if not self.with_bbox or not isinstance(
            getattr(self.bbox_head, 'loss_cls', None), RankSortLoss
        ):
            raise ValueError(
                f"{name} needs a bbox_head trained with RankSortLoss (type='RankingBBoxHead', "
                "loss_cls=dict(type='RankSortLoss')): its ranking loss balances the mask loss"
            )
        if self.with_mask and not isinstance(self.mask_head, RankingFCNMaskHead):
            raise ValueError(
                f'{name} needs a RankingFCNMaskHead (got {type(self.mask_head).__name__}): it '
                'weighs and balances the mask loss'
            )

    def loss(
        self, x: Tuple[Tensor], rpn_results_list: InstanceList, batch_data_samples: SampleList
    ) -> dict:
        """The box head's and the mask head's losses of a batch.

        Args:
            x (tuple[Tensor]): the multi-level features, each (B, c, h_l, w_l).
            rpn_results_list (list[:obj:`InstanceData`]): each image's proposals (``bboxes``).
            batch_data_samples (list[:obj:`DetDataSample`]): each image's ``gt_instances``
                (``bboxes``, ``labels``, ``masks`` with a mask head) and
                ``ignored_instances``.

        Returns:
            dict[str, Tensor]: the terms of the box head's loss (``loss_rank``, ``loss_sort``,
            ``loss_bbox``, ...) and, with a mask head, ``loss_mask``, ``dice_error`` and
            ``mask_sb_weight``.
        """
        if len(rpn_results_list) != len(batch_data_samples):
            raise ValueError(
                f'{type(self).__name__}: {len(rpn_results_list)} proposal lists for '
                f'{len(batch_data_samples)} images'
            )
        self.check_ground_truth(batch_data_samples)
        batch_gt_instances, batch_gt_instances_ignore, _ = unpack_gt_instances(batch_data_samples)
        sampling_results = []
        for i, rpn_results in enumerate(rpn_results_list):
            rpn_results.priors = rpn_results.pop('bboxes')
            assign_result = self.bbox_assigner.assign(
                rpn_results, batch_gt_instances[i], batch_gt_instances_ignore[i]
            )
            sampling_results.append(
                self.bbox_sampler.sample(
                    assign_result,
                    rpn_results,
                    batch_gt_instances[i],
                    feats=[level[i][None] for level in x],
                )
            )
        bbox_results = self.bbox_loss(x, sampling_results)
        losses = dict(bbox_results['loss_bbox'])
        if self.with_mask:
            mask_results = self.mask_loss(
                x,
                sampling_results,
                bbox_results['bbox_feats'],
                batch_gt_instances,
                cls_score=bbox_results['cls_score'],
                balance_target=(losses['loss_rank'] + losses['loss_sort']).detach(),
            )
            losses.update(mask_results['loss_mask'])
        return losses

    def mask_loss(
        self,
        x: Tuple[Tensor],
        sampling_results: List[SamplingResult],
        bbox_feats: Tensor,
        batch_gt_instances: InstanceList,
        *,
        cls_score: Tensor,
        balance_target: Tensor,
    ) -> dict:
        """The mask head's loss on at most ``max_train_masks`` positive RoIs of the batch.

        Args:
            x (tuple[Tensor]): the multi-level features.
            sampling_results (list[:obj:`SamplingResult`]): each image's RoIs, positives first
                (the rows of ``cls_score`` and ``bbox_feats``, image by image).
            bbox_feats (Tensor): shape (R, c, s, s), the RoI features of the box head.
            batch_gt_instances (list[:obj:`InstanceData`]): each image's ``masks`` and
                ``labels``.
            cls_score (Tensor): shape (R, C), the box head's classification logits.
            balance_target (Tensor): shape (), the box head's ``loss_rank + loss_sort``.

        Returns:
            dict: ``mask_preds`` (N, C, h, w), ``mask_feats``, ``sampling_results`` (each
            image's trained positives), ``pos_weights`` (N, ) and ``loss_mask`` (a dict, see
            :meth:`RankingFCNMaskHead.loss_and_target`).
        """
        num_pos = [result.pos_priors.size(0) for result in sampling_results]
        keep = self.select_masks(num_pos)
        starts, start = [], 0
        for result in sampling_results:
            starts.append(start)
            start += result.pos_priors.size(0) + result.neg_priors.size(0)
        rows = torch.cat([index + first for index, first in zip(keep, starts)]).to(cls_score.device)
        pos_weights = cls_score.detach()[rows].float().amax(1).sigmoid()
        kept = [keep_positives(result, index) for result, index in zip(sampling_results, keep)]
        if self.share_roi_extractor:
            mask_results = self._mask_forward(x, pos_inds=rows, bbox_feats=bbox_feats)
        else:
            mask_results = self._mask_forward(x, bbox2roi([result.pos_priors for result in kept]))
        mask_loss_and_target = self.mask_head.loss_and_target(
            mask_preds=mask_results['mask_preds'],
            sampling_results=kept,
            batch_gt_instances=batch_gt_instances,
            rcnn_train_cfg=self.train_cfg,
            pos_weights=pos_weights,
            balance_target=balance_target,
        )
        mask_results.update(
            sampling_results=kept,
            pos_weights=pos_weights,
            loss_mask=mask_loss_and_target['loss_mask'],
        )
        return mask_results

    def select_masks(self, num_pos: List[int]) -> List[Tensor]:
        """The positives each image trains masks on: all if the batch has at most
        ``max_train_masks``, else ``max_train_masks`` drawn uniformly without replacement over
        the batch (torch's CPU generator).

        Args:
            num_pos (list[int]): the number of positives of each image.

        Returns:
            list[Tensor]: each image's indices into its positives, (k_i, ) int64 on the CPU,
            increasing.
        """
        total = sum(num_pos)
        if total <= self.max_train_masks:
            return [torch.arange(n) for n in num_pos]
        drawn = torch.randperm(total)[: self.max_train_masks].sort().values
        keep, start = [], 0
        for n in num_pos:
            mine = drawn[(drawn >= start) & (drawn < start + n)]
            keep.append(mine - start)
            start += n
        return keep

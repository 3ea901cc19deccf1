"""The mask head of RS Mask R-CNN: a score-weighted Dice loss balanced to the box head's
ranking loss."""

from typing import List, Optional

import torch
from mmengine.config import ConfigDict
from torch import Tensor

from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList

from ...utils.balanced_dice import balanced_dice_loss, check_balanced_dice_loss


@MODELS.register_module()
class RankingFCNMaskHead(FCNMaskHead):
    """mmdet's FCN mask head trained as RS Mask R-CNN trains it (Oksuz et al., ICCV 2021).

    The loss of a batch of N positive RoIs, each with its detached weight w_i (the highest
    class score, sigmoid, of the RoI's classification logits, as the Rank & Sort box loss
    weighs it; :class:`RankSortRoIHead` passes them):

    * ``dice_i = 2 sum(p t) / (sum(p^2) + sum(t^2) + 1e-5)`` over the mask of RoI i, with p the
      sigmoid of the logits of its ground-truth class (channel 0 if class agnostic) and t the
      ground-truth mask RoIAligned into the RoI and binarised at 0.5 (mmdet's ``mask_target``);
    * ``L_mask = sum_i w_i (1 - dice_i) / sum_i w_i`` (a sum under 1e-10 divides by 1);
    * self-balance, every iteration and without history: ``loss_mask = SB L_mask`` with the
      detached ``SB = target / L_mask`` (0 where L_mask is 0), ``target`` the detached
      ``loss_rank + loss_sort`` of the R-CNN box head: the value is the target and the gradient
      that of L_mask scaled by SB; tensor operations only (no host synchronisation).

    ``loss_mask`` is mmdet's ``DiceLoss`` (sigmoid, V-Net form); it adds its ``eps`` to both sums
    of the denominator, so the default ``eps=5e-6`` is the RS code's 1e-5. Its ``loss_weight``
    must be 1: the balance sets the scale. Prediction is FCNMaskHead's (sigmoid of the predicted
    class's channel, pasted, binarised at ``mask_thr_binary``).

    As the RS code: the Dice, its targets, the weights, their 1e-10 guard and the balance; no
    RoI gives ``mask_preds.sum()`` (zero, with a graph). Deliberately different: SB is 0 where
    L_mask is 0 (the RS code divides by it), computed on the device (the RS code reads
    ``L_mask.item()``), and the loss is float32 whatever the logits' precision.

    Args:
        loss_mask (dict): config of the per-RoI Dice loss, a ``DiceLoss`` with ``use_sigmoid``
            and ``activate`` True and ``loss_weight`` 1. Defaults to the RS code's Dice.
        **kwargs: the other arguments of :class:`FCNMaskHead`.
    """

    def __init__(
        self,
        *args,
        loss_mask: ConfigType = dict(
            type='DiceLoss',
            use_sigmoid=True,
            activate=True,
            naive_dice=False,
            eps=5e-6,
            loss_weight=1.0,
        ),
        **kwargs,
    ) -> None:
        super().__init__(*args, loss_mask=loss_mask, **kwargs)
        check_balanced_dice_loss(type(self).__name__, self.loss_mask, loss_mask)

    def loss_and_target(
        self,
        mask_preds: Tensor,
        sampling_results: List[SamplingResult],
        batch_gt_instances: InstanceList,
        rcnn_train_cfg: ConfigDict,
        pos_weights: Optional[Tensor] = None,
        balance_target: Optional[Tensor] = None,
    ) -> dict:
        """The weighted, self-balanced Dice loss of the positive RoIs of a batch.

        Args:
            mask_preds (Tensor): shape (N, C, h, w) (C = 1 if class agnostic), mask logits of
                the positive RoIs of ``sampling_results``, image by image.
            sampling_results (list[:obj:`SamplingResult`]): the positives of each image.
            batch_gt_instances (list[:obj:`InstanceData`]): ``masks`` and ``labels`` of each
                image.
            rcnn_train_cfg (:obj:`ConfigDict`): ``mask_size`` of the targets.
            pos_weights (Tensor): shape (N, ), the positives' weights w_i (detached here).
            balance_target (Tensor): shape (), the value ``loss_mask`` is balanced to (detached
                here).

        Returns:
            dict: ``loss_mask``, a dict of ``loss_mask`` (``SB L_mask``) and, to log,
            ``dice_error`` (L_mask) and ``mask_sb_weight`` (SB); ``mask_targets`` (N, h, w).

        Raises:
            ValueError: without ``pos_weights`` and ``balance_target`` (given by
                :class:`RankSortRoIHead`), or if ``pos_weights`` is not (N, ).
        """
        if pos_weights is None or balance_target is None:
            raise ValueError(
                f"{type(self).__name__} needs the positives' weights and the balance target: "
                'use it in a RankSortRoIHead'
            )
        num = mask_preds.size(0)
        if pos_weights.shape != (num,):
            raise ValueError(
                f'{type(self).__name__}: pos_weights must be ({num},), one per positive RoI, got '
                f'{tuple(pos_weights.shape)}'
            )
        mask_targets = self.get_targets(sampling_results, batch_gt_instances, rcnn_train_cfg)
        if num == 0:
            zero = mask_preds.sum()
            loss = dict(loss_mask=zero, dice_error=zero.detach(), mask_sb_weight=zero.detach())
            return dict(loss_mask=loss, mask_targets=mask_targets)
        if self.class_agnostic:
            channels = mask_preds.new_zeros(num, dtype=torch.long)
        else:
            channels = torch.cat([res.pos_gt_labels for res in sampling_results])
        logits = mask_preds[torch.arange(num, device=mask_preds.device), channels].float()
        errors = self.loss_mask(logits, mask_targets, reduction_override='none')
        loss = balanced_dice_loss(errors, pos_weights, balance_target)
        return dict(loss_mask=loss, mask_targets=mask_targets)

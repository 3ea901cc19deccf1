"""YOLACT's protonet trained as RS-YOLACT: a score-weighted Dice loss of the assembled masks,
balanced to the box head's ranking and sorting losses."""

from typing import List, Optional

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.dense_heads import YOLACTProtonet
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList

from ..utils.balanced_dice import balanced_dice_loss, check_balanced_dice_loss


@MODELS.register_module()
class RankingYOLACTProtonet(YOLACTProtonet):
    """mmdet's YOLACT protonet trained as RS-YOLACT (Oksuz et al., ICCV 2021), after a
    :class:`RankingYOLACTHead`.

    Each positive anchor i of the box head gives a mask p_i = sigmoid(prototypes @ coeffs_i)
    (YOLACTProtonet's assembly, at the prototypes' resolution), zero outside its ground-truth
    box (``crop_mask_preds``: the box normalised by the image shape, 1 pixel of padding); its
    target t_i is the ground-truth mask of its instance, resized bilinearly to the prototypes'
    size and binarised at 0.5 (not cropped). The loss of the batch's N positives:

    * ``dice_i = 2 sum(p t) / (sum(p^2) + sum(t^2) + 1e-5)`` (``loss_mask``, mmdet's
      ``DiceLoss`` on probabilities: it adds its ``eps`` 5e-6 to both sums);
    * ``L_mask = sum_i w_i (1 - dice_i) / sum_i w_i``, w_i the positive's detached weight from
      the box head (its highest class score, as the box loss weighs it; a sum under 1e-10
      divides by 1);
    * ``loss_mask = SB L_mask`` with the detached ``SB = (loss_rank + loss_sort) / L_mask`` (0
      where L_mask is 0), ``loss_rank + loss_sort`` the box head's: the value is theirs, the
      gradient that of L_mask scaled by SB (see :func:`balanced_dice_loss`).

    ``max_masks_to_train`` None trains every positive's mask; a number m keeps at most m
    positives an image, drawn at random, each with its own weight. A batch without positives
    gives a zero loss with a graph through the prototypes. There is no semantic segmentation
    branch. Prediction is YOLACTProtonet's (masks cropped by the predicted boxes, resized to the
    image, binarised at ``mask_thr``).

    As the RS code: the masks, crops, targets, Dice, weights, their guard and the balance; every
    positive's mask trained (its config's ``max_masks_to_train`` 100 is not read). Deliberately
    different: a batch without positives gives zero (the RS code raises); SB is 0 where L_mask
    is 0 and computed on the device (the RS code reads ``L_mask.item()``); the loss is float32
    whatever the masks' precision; no clamp of the masks to [0, 1] (sigmoids, zeroed outside
    the box, lie there).

    Args:
        num_classes (int): number of classes, without background.
        loss_mask (dict): the per-mask Dice loss, a ``DiceLoss`` with ``use_sigmoid`` True,
            ``activate`` False (the masks are probabilities) and ``loss_weight`` 1. Defaults to
            the RS code's Dice.
        max_masks_to_train (int, optional): masks trained an image, at most; None: all.
            Defaults to None.
        loss_mask_weight (float): must be 1 (the balance sets the scale).
        with_seg_branch (bool): must be False.
        **kwargs: the other arguments of :class:`YOLACTProtonet`.
    """

    def __init__(
        self,
        *args,
        loss_mask: ConfigType = dict(
            type='DiceLoss',
            use_sigmoid=True,
            activate=False,
            naive_dice=False,
            eps=5e-6,
            loss_weight=1.0,
        ),
        max_masks_to_train: Optional[int] = None,
        loss_mask_weight: float = 1.0,
        with_seg_branch: bool = False,
        **kwargs,
    ) -> None:
        name = type(self).__name__
        if with_seg_branch:
            raise ValueError(
                f'{name} trains no semantic segmentation branch: with_seg_branch must be False'
            )
        if loss_mask_weight != 1.0:
            raise ValueError(
                f'{name}: loss_mask_weight must be 1 (got {loss_mask_weight}): the self-balance '
                'sets the scale of the mask loss'
            )
        if max_masks_to_train is not None and max_masks_to_train < 1:
            raise ValueError(f'{name}: max_masks_to_train must be None or >= 1')
        super().__init__(
            *args,
            max_masks_to_train=max_masks_to_train,
            loss_mask_weight=loss_mask_weight,
            with_seg_branch=False,
            **kwargs,
        )
        self.loss_mask = MODELS.build(loss_mask)
        check_balanced_dice_loss(name, self.loss_mask, loss_mask, activate=False)

    def loss_by_feat(
        self,
        mask_preds: List[Tensor],
        segm_preds: Optional[Tensor],
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        positive_infos: InstanceList,
        **kwargs,
    ) -> dict:
        """The weighted, balanced Dice loss of the positives' masks.

        Args:
            mask_preds (list[Tensor]): per image, shape (h, w, P_i), the positives' masks
                (probabilities) at the prototypes' resolution.
            segm_preds (None): no semantic segmentation branch.
            batch_gt_instances (list[:obj:`InstanceData`]): ``masks`` (padded to the batch
                input shape) of every image.
            batch_img_metas (list[dict]): meta information of every image.
            positive_infos (list[:obj:`InstanceData`]): per image, the positives of
                :meth:`RankingYOLACTHead.get_positive_infos`.

        Returns:
            dict[str, Tensor]: ``loss_mask`` and, to log, ``dice_error`` and ``mask_sb_weight``.

        Raises:
            ValueError: if the positives lack their ``weights`` or ``balance_target``.
        """
        if not positive_infos or any(
            'weights' not in info or 'balance_target' not in info.metainfo
            for info in positive_infos
        ):
            raise ValueError(
                f"{type(self).__name__} needs the positives' weights and balance target: use it "
                'after a RankingYOLACTHead'
            )
        masks = self.crop_mask_preds(mask_preds, batch_img_metas, positive_infos)
        preds, targets, weights = [], [], []
        for image_masks, gt_instances, info in zip(masks, batch_gt_instances, positive_infos):
            kept = self.kept_positives(len(info), image_masks.device)
            preds.append(image_masks[kept])
            targets.append(
                self.mask_targets(gt_instances, info.pos_assigned_gt_inds[kept], image_masks)
            )
            weights.append(info.weights[kept])
        preds = torch.cat(preds).flatten(1).float()
        errors = self.loss_mask(preds, torch.cat(targets).flatten(1), reduction_override='none')
        return balanced_dice_loss(
            errors, torch.cat(weights), positive_infos[0].metainfo['balance_target']
        )

    def kept_positives(self, num_pos: int, device: torch.device) -> Tensor:
        """Indices of the positives of an image whose masks are trained: all, or
        ``max_masks_to_train`` of them at random."""
        if self.max_masks_to_train is None or num_pos <= self.max_masks_to_train:
            return torch.arange(num_pos, device=device)
        return torch.randperm(num_pos, device=device)[: self.max_masks_to_train]

    @staticmethod
    def mask_targets(gt_instances: InstanceData, gt_inds: Tensor, masks: Tensor) -> Tensor:
        """The binary targets (K, h, w) of the masks (P, h, w) of positives assigned to the
        ground-truth instances ``gt_inds`` (K, ): their masks resized bilinearly to (h, w),
        binarised at 0.5."""
        size = masks.shape[-2:]
        if gt_inds.numel() == 0:
            return masks.new_zeros((0, *size))
        gt_masks = gt_instances.masks.to_tensor(dtype=torch.float32, device=masks.device)
        resized = F.interpolate(gt_masks[gt_inds][None], size, mode='bilinear', align_corners=False)
        return resized[0].gt(0.5).float()

"""SOLOv2 trained with Rank & Sort Loss: the category branch ranks and sorts its grid cells by the
Dice coefficient of their masks; the Dice mask loss is score-weighted and self-balanced."""

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet.models.dense_heads import SOLOV2Head
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, InstanceList

from ..utils.balanced_dice import balanced_dice_loss, check_balanced_dice_loss
from ..utils.input_checks import check_gt_instances, image_name
from ..utils.ranking_inputs import check_ranking_loss, ranking_labels


@MODELS.register_module()
class RankingSOLOV2Head(SOLOV2Head):
    """mmdet's SOLOv2 head trained as RS-SOLOv2 (Oksuz et al., ICCV 2021).

    The targets are SOLOv2's (:meth:`SOLOV2Head._get_targets_single`): a grid cell of a level
    whose centre region holds the mass centre of a ground-truth mask is a positive of its class,
    with that instance's mask (at the mask features' stride) as its target. With the C sigmoid
    logits of every cell of every level and image of the batch (A rows) and, for each of SOLOv2's
    E mask targets, the mask p_e = sigmoid(kernel_e * mask features):

    * ``dice_e = 2 sum(p t) / (sum(p^2) + eps + sum(t^2) + eps)`` (``loss_mask``, a V-Net Dice
      with mmdet's eps 1e-3, the same as SOLOv2's); its error ``1 - dice_e``;
    * the sorting target of a positive cell is its detached ``dice_e``: the Rank & Sort Loss
      (``loss_cls``, a :class:`RankSortLoss`) ranks the positives above the negatives and sorts
      them by it (``loss_rank``, ``loss_sort``);
    * ``L_mask = sum_e w_e (1 - dice_e) / sum_e w_e``, w_e the detached highest class score
      (sigmoid) of the cell of target e (a sum under 1e-10 divides by 1), self-balanced every
      iteration: ``loss_mask = SB L_mask`` with the detached ``SB = (loss_rank + loss_sort) /
      L_mask`` (0 where L_mask is 0).

    Where two instances share a cell, SOLOv2's targets give the cell the class of the later one
    and train both masks on it: the cell's sorting target is the Dice of the later instance's
    mask (the one of its class), and both masks take the mask loss with the cell's weight. A
    batch without positives gives zeros with a graph through every output (zero gradients).
    Prediction is SOLOv2's (scores times the maskness, Matrix NMS).

    As the RS-SOLOv2 code (kemaloksuz/RankSortLoss-Solov2): the Dice, the sorting target 1 -
    Dice loss, the weights with their 1e-10 guard and the balance, the mask loss weight left to
    the balance. Deliberately different: each positive's target and weight are those of its
    own cell (that code assigns the Dice targets, in the order of the masks, to the positives
    in the order of the cells, and weighs the masks, in theirs, by the scores in the order of
    the cells: orders that differ where two instances of one image and level have cells out
    of ascending order, the second's before the first's); SOLOv2's mmdet 3.3 targets (the
    later instance takes a shared cell, where that code keeps the first); SB is 0 where L_mask
    is 0 and computed on the device; the losses are float32 whatever the precision of the
    outputs.

    Args:
        loss_mask (dict): the per-mask Dice loss: a ``DiceLoss`` with ``use_sigmoid`` and
            ``activate`` True and ``loss_weight`` 1 (the balance sets the scale). Defaults to
            mmdet's V-Net Dice (eps 1e-3).
        loss_cls (dict): a ``RankSortLoss``. Defaults to ``dict(type='RankSortLoss')``.
        **kwargs: the other arguments of :class:`SOLOV2Head`.
    """

    #: The ranking losses this head feeds (:mod:`mmdet_alrp.models.utils.ranking_fit`).
    loss_types = ('RankSortLoss',)

    def __init__(
        self,
        *args,
        loss_mask: ConfigType = dict(
            type='DiceLoss', use_sigmoid=True, activate=True, eps=1e-3, loss_weight=1.0
        ),
        loss_cls: ConfigType = dict(type='RankSortLoss'),
        **kwargs,
    ) -> None:
        super().__init__(*args, loss_mask=loss_mask, loss_cls=loss_cls, **kwargs)
        check_ranking_loss(self, self.loss_types)
        check_balanced_dice_loss(type(self).__name__, self.loss_mask, loss_mask)

    def loss(self, x: Tuple[Tensor], batch_data_samples: SampleList, **kwargs) -> dict:
        """SOLOV2Head's loss, after checking that every image has its instance masks.

        Raises:
            ValueError: naming the image whose ground truth has no ``masks``.
        """
        metas = [sample.metainfo for sample in batch_data_samples]
        for index, sample in enumerate(batch_data_samples):
            if 'masks' not in sample.gt_instances:
                name = image_name(index, metas)
                raise ValueError(
                    f'{type(self).__name__} trains on instance masks: the ground truth of {name}'
                    ' has none (LoadAnnotations(with_mask=True) in the train pipeline)'
                )
        return super().loss(x, batch_data_samples, **kwargs)

    def loss_by_feat(
        self,
        mlvl_kernel_preds: List[Tensor],
        mlvl_cls_preds: List[Tensor],
        mask_feats: Tensor,
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        **kwargs,
    ) -> dict:
        """Rank & Sort Loss of the category branch and the balanced Dice loss of the masks.

        Args:
            mlvl_kernel_preds (list[Tensor]): per level, shape (B, K, S, S), the dynamic kernels
                of the S x S grid cells (K = mask feature channels x dynamic_conv_size ** 2).
            mlvl_cls_preds (list[Tensor]): per level, shape (B, C, S, S), the class logits.
            mask_feats (Tensor): shape (B, K, h, w), the unified mask features.
            batch_gt_instances (list[:obj:`InstanceData`]): per image, ``bboxes``, ``labels``
                and ``masks`` (padded to the batch shape).
            batch_img_metas (list[dict]): per image, its meta information.

        Returns:
            dict[str, Tensor]: ``loss_rank``, ``loss_sort``, ``loss_mask`` and, to log,
            ``dice_error`` (L_mask before the balance), ``mask_sb_weight`` (SB), ``mean_dice``
            (of the positives' sorting targets, 0 without positives) and ``num_pos`` (float).

        Raises:
            ValueError: if a ground-truth label lies outside 0 .. C-1 or a box is not finite or
                inverted (naming the image).
        """
        check_gt_instances(batch_gt_instances, self.num_classes, batch_img_metas)
        targets = [
            self._get_targets_single(gt, featmap_sizes=mask_feats.shape[-2:])
            for gt in batch_gt_instances
        ]
        mask_logits, mask_targets, mask_rows, cell_labels = [], [], [], []
        first_row = 0
        for level, num_grid in enumerate(self.num_grids):
            for image, (level_masks, labels, _, cells) in enumerate(targets):
                cell_labels.append(labels[level].flatten())
                if cells[level]:
                    mask_logits.append(
                        self._masks_of(
                            mlvl_kernel_preds[level][image], cells[level], mask_feats[image]
                        )
                    )
                    mask_targets.append(level_masks[level])
                    rows = torch.tensor(cells[level], device=mask_feats.device)
                    mask_rows.append(first_row + image * num_grid**2 + rows)
            first_row += len(targets) * num_grid**2
        logits = torch.cat(
            [preds.permute(0, 2, 3, 1).reshape(-1, self.num_classes) for preds in mlvl_cls_preds]
        )
        cell_labels = torch.cat(cell_labels)
        pos_rows = torch.nonzero(cell_labels < self.num_classes).squeeze(1)
        labels = ranking_labels(cell_labels, pos_rows, self.num_classes)
        if not mask_logits:  # zeros with a graph through every output
            outputs = mask_feats.sum() + sum(preds.sum() for preds in mlvl_kernel_preds)
            errors = (outputs.float() * 0).expand(0)
            sorting_targets = weights = logits.new_zeros(0, dtype=torch.float32)
        else:
            mask_logits = torch.cat(mask_logits).float()
            mask_targets = torch.cat(mask_targets)
            mask_rows = torch.cat(mask_rows)
            errors = self.loss_mask(mask_logits, mask_targets, reduction_override='none')
            with torch.no_grad():
                weights = logits[mask_rows].float().amax(1).sigmoid()
                # a cell's mask is that of the last instance written on it: the one of its class
                entries = torch.arange(len(mask_rows), device=mask_rows.device)
                last = mask_rows.new_full((len(cell_labels),), -1)
                last = last.scatter_reduce(0, mask_rows, entries, 'amax')
                sorting_targets = (1 - errors.detach()[last[pos_rows]]).clamp(0, 1)
        loss_rank, loss_sort = self.loss_cls.rank_and_sort(logits, labels, sorting_targets)
        mask_loss = balanced_dice_loss(errors, weights, loss_rank + loss_sort)
        num_pos = len(pos_rows)
        return dict(
            loss_rank=loss_rank,
            loss_sort=loss_sort,
            **mask_loss,
            mean_dice=sorting_targets.sum() / max(num_pos, 1),
            num_pos=loss_rank.new_tensor(float(num_pos)).detach(),
        )

    def _masks_of(self, kernels: Tensor, cells: List[int], mask_feats: Tensor) -> Tensor:
        """Mask logits of the given cells of one level and image.

        Args:
            kernels (Tensor): shape (K, S, S), the level's dynamic kernels of the image.
            cells (list[int]): E cell indices (row x S + column).
            mask_feats (Tensor): shape (K', h, w), the image's mask features.

        Returns:
            Tensor: shape (E, h', w') (h' = h - dynamic_conv_size + 1, and so w'), the logits.
        """
        size = self.dynamic_conv_size
        weight = kernels.flatten(1)[:, cells].t().reshape(len(cells), -1, size, size)
        return F.conv2d(mask_feats[None], weight).squeeze(0)

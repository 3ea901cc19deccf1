"""RetinaNet's head with the targets of a ranking-based loss, for MaxIoU and ATSS assigners."""
from typing import List

import torch
from torch import Tensor

from mmdet.models.dense_heads import ATSSHead, RetinaHead
from mmdet.models.task_modules.assigners import ATSSAssigner
from mmdet.structures.bbox import cat_boxes, get_box_tensor
from mmdet.utils import InstanceList, OptInstanceList

from .ranking_utils import RankingTargets, ranking_labels, use_sigmoid_logits


class RankingRetinaHead(RetinaHead):
    """:class:`RetinaHead` whose classifier has one sigmoid logit per class and whose targets
    are flattened over the whole batch for a ranking-based loss.

    The base of :class:`aLRPRetinaHead` and :class:`APLossRetinaHead`. Positives and negatives
    come from ``train_cfg.assigner`` with the configured sampler (PseudoSampler when none):
    ``MaxIoUAssigner``, or ``ATSSAssigner``, which also needs the number of anchors of each level
    inside the image: those targets are :class:`ATSSHead`'s, as mmdet's own ``VFNetHead`` does.
    Anchors with label weight 0 (the assigner's ignore band, anchors outside the image) are
    ignored for every class.
    """

    def _init_layers(self) -> None:
        use_sigmoid_logits(self)
        super()._init_layers()

    @property
    def level_aware_assigner(self) -> bool:
        """Whether the assigner needs the number of anchors of each level (ATSS)."""
        return isinstance(getattr(self, 'assigner', None), ATSSAssigner)

    # ATSSHead's targets, used with a level-aware assigner.
    get_num_level_anchors_inside = ATSSHead.get_num_level_anchors_inside

    def _get_targets_single(self, *args, **kwargs) -> tuple:
        if self.level_aware_assigner:
            return ATSSHead._get_targets_single(self, *args, **kwargs)
        return super()._get_targets_single(*args, **kwargs)

    def get_targets(self,
                    anchor_list: List[List[Tensor]],
                    valid_flag_list: List[List[Tensor]],
                    batch_gt_instances: InstanceList,
                    batch_img_metas: List[dict],
                    batch_gt_instances_ignore: OptInstanceList = None,
                    unmap_outputs: bool = True) -> tuple:
        """:meth:`AnchorHead.get_targets`, or :meth:`ATSSHead.get_targets` without its leading
        anchors for a level-aware assigner.

        Returns:
            tuple: ``(labels_list, label_weights_list, bbox_targets_list, bbox_weights_list,
            avg_factor)``, the lists per level of shapes (N, A_l), (N, A_l), (N, A_l, 4),
            (N, A_l, 4).
        """
        args = (anchor_list, valid_flag_list, batch_gt_instances, batch_img_metas,
                batch_gt_instances_ignore, unmap_outputs)
        if self.level_aware_assigner:
            return ATSSHead.get_targets(self, *args)[1:]
        return super().get_targets(*args)

    def ranking_targets(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        batch_gt_instances: InstanceList,
                        batch_img_metas: List[dict],
                        batch_gt_instances_ignore: OptInstanceList = None) -> RankingTargets:
        """The batch's logits, labels and positive boxes, flattened image by image, level by
        level, in the order of the anchors.

        Arguments as :meth:`RankingHeadMixin.loss_by_feat`.

        Returns:
            :obj:`RankingTargets`: A = N * (anchors of an image) priors.
        """
        num_imgs = len(batch_img_metas)
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        anchor_list, valid_flag_list = self.get_anchors(
            featmap_sizes, batch_img_metas, device=cls_scores[0].device)
        anchors = torch.cat([get_box_tensor(cat_boxes(a)) for a in anchor_list])
        labels, label_weights, bbox_targets, _, _ = self.get_targets(
            anchor_list, valid_flag_list, batch_gt_instances, batch_img_metas,
            batch_gt_instances_ignore)
        labels = torch.cat(labels, 1).reshape(-1)
        ignored = torch.cat(label_weights, 1).reshape(-1) == 0
        bbox_targets = torch.cat(bbox_targets, 1).reshape(-1, bbox_targets[0].size(-1))

        def flatten(maps: List[Tensor], channels: int) -> Tensor:
            return torch.cat([m.permute(0, 2, 3, 1).reshape(num_imgs, -1, channels)
                              for m in maps], 1).reshape(-1, channels)

        logits = flatten(cls_scores, self.cls_out_channels)
        deltas = flatten(bbox_preds, self.bbox_coder.encode_size)
        pos = torch.nonzero(labels < self.num_classes).squeeze(1)
        pos_anchors = anchors[pos].float()
        pos_preds = get_box_tensor(self.bbox_coder.decode(pos_anchors, deltas[pos].float()))
        pos_targets = bbox_targets[pos].float()
        if self.reg_decoded_bbox:
            pos_decoded_targets = pos_targets
        else:
            pos_decoded_targets = get_box_tensor(self.bbox_coder.decode(pos_anchors,
                                                                        pos_targets))
        return RankingTargets(
            logits=logits,
            labels=ranking_labels(labels, pos, self.num_classes, ignored),
            pos_bbox_preds=pos_preds if self.reg_decoded_bbox else deltas[pos],
            pos_bbox_targets=bbox_targets[pos],
            pos_decoded_preds=pos_preds,
            pos_decoded_targets=pos_decoded_targets)

"""FoveaBox's head with the targets of a ranking-based loss."""
import math
from typing import List

import torch
from torch import Tensor

from mmdet.models.dense_heads import FoveaHead
from mmdet.utils import InstanceList, OptInstanceList

from .ranking_utils import RankingTargets, ranking_labels, use_sigmoid_logits

#: Bound of a predicted log distance (as DeltaXYWHBBoxCoder bounds dw, dh): exp cannot overflow.
MAX_LOG_DISTANCE = math.log(1000. / 16)


class RankingFoveaHead(FoveaHead):
    """:class:`FoveaHead` whose classifier has one sigmoid logit per class and whose targets are
    flattened over the whole batch for a ranking-based loss.

    The base of :class:`aLRPFoveaHead` and :class:`APLossFoveaHead`. Targets are FoveaHead's own:
    a point inside the fovea of a ground-truth box of its level's scale range is a positive of the
    box's class, every other point a negative (FoveaBox has no ignore band and, like FoveaHead,
    this head does not use ``batch_gt_instances_ignore``).
    """

    def _init_layers(self) -> None:
        use_sigmoid_logits(self)
        super()._init_layers()

    @staticmethod
    def decode_points(points: Tensor, base_lens: Tensor, log_distances: Tensor) -> Tensor:
        """Boxes from FoveaHead's regression outputs (or targets), as its ``_bbox_decode`` but
        without clipping to the image.

        Args:
            points (Tensor): shape (P, 2), (x, y) of the points.
            base_lens (Tensor): shape (P, ), the base edge of each point's level.
            log_distances (Tensor): shape (P, 4), log of the distances from the point to the left,
                top, right and bottom sides, in units of the base edge.

        Returns:
            Tensor: shape (P, 4), boxes (x1, y1, x2, y2).
        """
        distances = log_distances.clamp(max=MAX_LOG_DISTANCE).exp() * base_lens[:, None]
        return torch.cat([points - distances[:, :2], points + distances[:, 2:]], 1)

    def ranking_targets(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        batch_gt_instances: InstanceList,
                        batch_img_metas: List[dict],
                        batch_gt_instances_ignore: OptInstanceList = None) -> RankingTargets:
        """The batch's logits, labels and positive boxes, flattened level by level, image by
        image, in the order of FoveaHead's targets.

        Arguments as :meth:`RankingHeadMixin.loss_by_feat`, with one prior per location
        (``num_base_priors`` = 1); ``batch_img_metas`` and ``batch_gt_instances_ignore`` are not
        used.

        Returns:
            :obj:`RankingTargets`: A = N * (points of an image) priors.
        """
        num_imgs = cls_scores[0].size(0)
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        priors = self.prior_generator.grid_priors(
            featmap_sizes, dtype=torch.float32, device=cls_scores[0].device)
        labels, bbox_targets = self.get_targets(batch_gt_instances, featmap_sizes, priors)
        logits = torch.cat([score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels)
                            for score in cls_scores])
        deltas = torch.cat([pred.permute(0, 2, 3, 1).reshape(-1, 4) for pred in bbox_preds])
        points = torch.cat([p.repeat(num_imgs, 1) for p in priors])
        base_lens = torch.cat([p.new_full((num_imgs * p.size(0), ), base_len)
                               for p, base_len in zip(priors, self.base_edge_list)])
        pos = torch.nonzero(labels < self.num_classes).squeeze(1)
        pos_points, pos_base_lens = points[pos], base_lens[pos]
        return RankingTargets(
            logits=logits,
            labels=ranking_labels(labels, pos, self.num_classes),
            pos_bbox_preds=deltas[pos],
            pos_bbox_targets=bbox_targets[pos],
            pos_decoded_preds=self.decode_points(pos_points, pos_base_lens, deltas[pos].float()),
            pos_decoded_targets=self.decode_points(pos_points, pos_base_lens,
                                                   bbox_targets[pos].float()))

"""The RoI head of a ranking Faster R-CNN: mmdet's, with the batch's ground truth checked."""

from typing import Tuple

from torch import Tensor

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import InstanceList

from ..utils import check_gt_instances


@MODELS.register_module()
class RankingRoIHead(StandardRoIHead):
    """:class:`StandardRoIHead` whose loss first checks every ground-truth box and label of
    the batch against the box head's ``num_classes`` C.

    A ranking R-CNN samples no ground truth into its RoIs (``PseudoSampler``), so the box head
    sees only the ground truth that some proposal matches; this check names a label outside
    0 .. C-1, a box with x2 < x1 or y2 < y1, or a non-finite box on the first batch, matched or
    not (one host synchronisation a batch).
    """

    def loss(
        self, x: Tuple[Tensor], rpn_results_list: InstanceList, batch_data_samples: SampleList
    ) -> dict:
        """:meth:`StandardRoIHead.loss`, after a ``ValueError`` for bad ground truth.

        Args:
            x (tuple[Tensor]): per level, shape (N, C_feat, H, W), features.
            rpn_results_list (list[:obj:`InstanceData`]): per image, the proposals.
            batch_data_samples (list[:obj:`DetDataSample`]): per image, its ``gt_instances``
                (``bboxes`` (G, 4), ``labels`` (G, )) and meta information.

        Returns:
            dict[str, Tensor]: the losses of :meth:`StandardRoIHead.loss`.
        """
        self.check_ground_truth(batch_data_samples)
        return super().loss(x, rpn_results_list, batch_data_samples)

    def check_ground_truth(self, batch_data_samples: SampleList) -> None:
        """Raise a ``ValueError`` that names the first ground-truth label outside 0 .. C-1 or
        bad box of the batch.

        Args:
            batch_data_samples (list[:obj:`DetDataSample`]): per image, its ``gt_instances``
                and meta information.
        """
        check_gt_instances(
            [sample.gt_instances for sample in batch_data_samples],
            self.bbox_head.num_classes,
            [sample.metainfo for sample in batch_data_samples],
        )

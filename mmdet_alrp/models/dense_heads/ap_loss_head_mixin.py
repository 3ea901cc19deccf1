"""The loss of the AP Loss dense heads, the ranking-based baseline of aLRP Loss."""
from typing import Dict

from torch import Tensor

from mmdet.utils import ConfigType

from ..losses import APLoss
from ..utils.input_checks import check_finite_outputs
from .ranking_utils import RankingHeadMixin, RankingTargets


class APLossHeadMixin(RankingHeadMixin):
    """Makes a ranking head (one with ``ranking_targets``, see :class:`RankingRetinaHead`) an
    AP Loss head (Chen et al., CVPR 2019).

    Classification: one AP Loss over the logits of every image, level, prior and class of the
    batch. Regression: ``loss_bbox`` on the positives, averaged over their 4P coordinates, as the
    aLRP Loss paper's AP Loss heads do (mmdet's RetinaHead and FoveaHead divide the sum by P, which
    gives 4 times this value).

    Args:
        loss_cls (dict): config of an :class:`APLoss`. Defaults to ``dict(type='APLoss')``.
        loss_bbox (dict): config of the regression loss. Defaults to Smooth L1 with beta 0.11.
        **kwargs: the arguments of the head.
    """

    def __init__(self,
                 *args,
                 loss_cls: ConfigType = dict(type='APLoss'),
                 loss_bbox: ConfigType = dict(type='SmoothL1Loss', beta=0.11, loss_weight=1.0),
                 **kwargs) -> None:
        super().__init__(*args, loss_cls=loss_cls, loss_bbox=loss_bbox, **kwargs)
        if not isinstance(self.loss_cls, APLoss):
            raise ValueError(f'{type(self).__name__} needs loss_cls=dict(type="APLoss"), got '
                             f'{type(self.loss_cls).__name__}')

    def loss_by_ranking_targets(self, targets: RankingTargets) -> Dict[str, Tensor]:
        """AP Loss and the regression loss of the flattened batch.

        Args:
            targets (:obj:`RankingTargets`): the batch, from ``ranking_targets``.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox`` and ``num_pos``, the number of positive
            priors of the batch (float).
        """
        check_finite_outputs('the regression targets of the positive priors',
                             [targets.pos_bbox_targets], 'is a ground-truth box of zero width '
                             'or height? Its encoding is infinite')
        loss_cls = self.loss_cls(targets.logits, targets.labels)
        loss_bbox = self.loss_bbox(targets.pos_bbox_preds, targets.pos_bbox_targets,
                                   avg_factor=targets.pos_bbox_targets.numel())
        num_pos = loss_cls.new_tensor(float(targets.num_pos))
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox, num_pos=num_pos)

"""The RoI box head of aLRP Faster R-CNN and aLRP Cascade R-CNN."""

from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
from mmdet.registry import MODELS

from .roi_ranking_adapter import RoIRankingAdapter


@MODELS.register_module()
class aLRPBBoxHead(RoIRankingAdapter, Shared2FCBBoxHead):
    """Two shared fcs with sigmoid classification and GIoU regression, trained with aLRP Loss
    (Oksuz et al., NeurIPS 2020).

    One aLRP Loss over every RoI and class of the batch with the loss's own self-balance, on
    BBoxHead's targets (see :class:`RoIRankingAdapter`); prediction runs per-class NMS on the
    sigmoid scores.

    Args:
        loss_cls (dict): config of the :class:`aLRPLoss` (``tau``, ``self_balance``,
            ``loss_weight``). Defaults to ``dict(type='aLRPLoss')``: tau 0.5, the R-CNN
            assigner's.
        reg_decoded_bbox (bool): must be True: the targets are the gt boxes themselves.
        **kwargs: the arguments of :class:`Shared2FCBBoxHead`; ``loss_bbox`` must be None.
    """

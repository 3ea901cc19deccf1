"""The R-CNN sampler of Rank & Sort Loss: every proposal is kept."""

import torch
from torch import Tensor

from mmdet.models.task_modules.assigners import AssignResult
from mmdet.models.task_modules.samplers import BaseSampler
from mmdet.registry import TASK_UTILS


@TASK_UTILS.register_module()
class KeepAllSampler(BaseSampler):
    """Keeps every proposal the assigner makes positive or negative (the ignored ones, if the
    assigner ignores any, stay out), and the ground-truth boxes as proposals unless
    ``add_gt_as_proposals=False``: no sampling heuristic, as RS R-CNN trains (the RS code's
    ``RandomSampler`` with ``num=1e10``). Unlike ``PseudoSampler``, its ``sample`` takes
    ``StandardRoIHead``'s arguments and adds the ground truth.

    Args:
        add_gt_as_proposals (bool): add the ground-truth boxes to the proposals. Defaults to
            True.
        **kwargs: unused (the keys of a RandomSampler config, say).
    """

    def __init__(self, add_gt_as_proposals: bool = True, **kwargs) -> None:
        super().__init__(
            num=0, pos_fraction=0, neg_pos_ub=-1, add_gt_as_proposals=add_gt_as_proposals
        )

    def _sample_pos(self, assign_result: AssignResult, num_expected: int, **kwargs) -> Tensor:
        """Indices (n, ) of every positive proposal (``num_expected`` unused)."""
        return torch.nonzero(assign_result.gt_inds > 0, as_tuple=False).flatten()

    def _sample_neg(self, assign_result: AssignResult, num_expected: int, **kwargs) -> Tensor:
        """Indices (n, ) of every negative proposal (``num_expected`` unused)."""
        return torch.nonzero(assign_result.gt_inds == 0, as_tuple=False).flatten()

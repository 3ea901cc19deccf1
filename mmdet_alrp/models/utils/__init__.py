from .input_checks import check_finite_outputs, check_ground_truth, check_gt_instances
from .ranking_fit import check_head_feeds_loss, is_ranking_head, is_ranking_loss
from .ranking_inputs import (
    RANKING_LOSSES,
    check_ranking_loss,
    default_reg_decoded_bbox,
    ranking_labels,
    refuse_loss_bbox,
    sigmoid_loss_cfg,
)

__all__ = [
    'RANKING_LOSSES',
    'default_reg_decoded_bbox',
    'check_finite_outputs',
    'check_ground_truth',
    'check_gt_instances',
    'check_head_feeds_loss',
    'is_ranking_head',
    'is_ranking_loss',
    'check_ranking_loss',
    'refuse_loss_bbox',
    'ranking_labels',
    'sigmoid_loss_cfg',
]

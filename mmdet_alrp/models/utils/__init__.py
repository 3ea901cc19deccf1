from .input_checks import check_finite_outputs, check_ground_truth, check_gt_instances
from .ranking_inputs import check_ranking_loss, ranking_labels, sigmoid_loss_cfg

__all__ = [
    'check_finite_outputs',
    'check_ground_truth',
    'check_gt_instances',
    'check_ranking_loss',
    'ranking_labels',
    'sigmoid_loss_cfg',
]

"""What every ranking loss module shares: the mark the heads read, the refusal of a head that
calls it per prior, and the classifier it gives mmdet's BBoxHead."""

import torch
from torch import Tensor, nn

from ..utils.ranking_fit import refuse_per_prior_call


class RankingLoss(nn.Module):
    """Base of the ranking losses (aLRPLoss, APLoss, RankSortLoss): a loss of the whole batch,
    called by a ranking head as ``loss(logits, labels, pos_preds, pos_targets)``.

    A subclass sets ``decoded_boxes``: True if the heads pass the positives' boxes decoded, (x1,
    y1, x2, y2); False for their regression in the head's target space. A call with keywords
    (``avg_factor``, ``weight``: mmdet's per-prior heads) raises a ValueError that names the
    ranking heads and ``docs/your_own_head.md``.

    For mmdet's ``BBoxHead``, which asks its ``loss_cls``: one sigmoid logit per class
    (:meth:`get_cls_channels`) and sigmoid scores with a zero background column
    (:meth:`get_activation`), which ``multiclass_nms`` and ``CascadeRoIHead`` drop.
    """

    decoded_boxes: bool
    custom_cls_channels = True
    custom_activation = True

    def __init__(self) -> None:
        super().__init__()
        self.register_forward_pre_hook(refuse_per_prior_call, with_kwargs=True)

    def get_cls_channels(self, num_classes: int) -> int:
        """One sigmoid logit per class, no background channel."""
        return num_classes

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """Scores (R, C + 1) of logits (R, C): the sigmoids and a zero background column."""
        scores = cls_score.sigmoid()
        return torch.cat([scores, scores.new_zeros(scores.size(0), 1)], 1)

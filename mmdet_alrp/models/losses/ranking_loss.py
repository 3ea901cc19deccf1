"""What every ranking loss module shares: the mark the heads read and the refusal of a head
that calls it per prior."""

from torch import nn

from ..utils.ranking_fit import refuse_per_prior_call


class RankingLoss(nn.Module):
    """Base of the ranking losses (aLRPLoss, APLoss, RankSortLoss): a loss of the whole batch,
    called by a ranking head as ``loss(logits, labels, pos_preds, pos_targets)``.

    A subclass sets ``decoded_boxes``: True if the heads pass the positives' boxes decoded, (x1,
    y1, x2, y2); False for their regression in the head's target space. A call with keywords
    (``avg_factor``, ``weight``: mmdet's per-prior heads) raises a ValueError that names the
    ranking heads and ``docs/your_own_head.md``.
    """

    decoded_boxes: bool

    def __init__(self) -> None:
        super().__init__()
        self.register_forward_pre_hook(refuse_per_prior_call, with_kwargs=True)

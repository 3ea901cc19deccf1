"""The mask loss of the Rank & Sort Loss heads: 1 - Dice of each positive's mask, weighted by the
positive's detached score and self-balanced every iteration to the ranking losses.

Used by the mask heads (:class:`RankingFCNMaskHead`, :class:`RankingSOLOV2Head`,
:class:`RankingYOLACTProtonet`); imported by module path, not from the package, since it builds
on :mod:`..losses.rank_sort_loss`.
"""

from typing import Any, Dict

from torch import Tensor, nn

from mmdet.models.losses import DiceLoss

from ..losses.rank_sort_loss import WEIGHT_SUM_FLOOR, RankSortLoss


def check_balanced_dice_loss(
    head: str, loss_mask: nn.Module, cfg: Any, activate: bool = True
) -> None:
    """Raises ValueError naming ``head`` unless its built ``loss_mask`` is a sigmoid
    ``DiceLoss`` (``use_sigmoid`` True, ``activate`` as given: True for a head that passes
    logits, False for one that passes probabilities) with ``loss_weight`` 1 (the balance sets
    the scale of the mask loss); ``cfg`` is the config it was built from (for the message)."""
    if not (
        isinstance(loss_mask, DiceLoss) and loss_mask.use_sigmoid and loss_mask.activate == activate
    ):
        raise ValueError(
            f'{head} takes a sigmoid DiceLoss with activate={activate} as loss_mask (it is '
            f'weighted per positive and balanced), got {cfg!r}; in a config inheriting another '
            "loss_mask, write loss_mask=dict(_delete_=True, type='DiceLoss', use_sigmoid=True, "
            f'activate={activate}, ...)'
        )
    if loss_mask.loss_weight != 1.0:
        raise ValueError(
            f'{head}: the DiceLoss loss_weight must be 1 (got {loss_mask.loss_weight}): the '
            'self-balance sets the scale of the mask loss'
        )


def balanced_dice_loss(
    errors: Tensor, weights: Tensor, balance_target: Tensor
) -> Dict[str, Tensor]:
    """The weighted mean of the positives' Dice errors, balanced to ``balance_target``.

    ``L_mask = sum_i w_i e_i / sum_i w_i`` (a sum of weights under 1e-10 divides by 1) and
    ``loss_mask = SB L_mask`` with the detached ``SB = target / L_mask`` (0 where L_mask is 0):
    its value is the target, its gradient that of L_mask scaled by SB; tensor operations only
    (no host synchronisation).

    Args:
        errors (Tensor): shape (N, ), float32, ``1 - dice_i`` of each positive's mask, with
            its graph. N = 0 gives a zero loss.
        weights (Tensor): shape (N, ), the positives' weights w_i (detached here).
        balance_target (Tensor): shape (), the value ``loss_mask`` is balanced to (detached
            here): ``loss_rank + loss_sort`` of the head whose scores weigh the masks.

    Returns:
        dict[str, Tensor]: ``loss_mask`` (``SB L_mask``) and, to log, ``dice_error`` (L_mask)
        and ``mask_sb_weight`` (SB).
    """
    weights = weights.detach().float()
    weight_sum = weights.sum()
    weight_sum = weight_sum.where(weight_sum >= WEIGHT_SUM_FLOOR, weight_sum.new_ones(()))
    mask_loss = (weights * errors).sum() / weight_sum
    balance = RankSortLoss.balance(balance_target.float(), mask_loss)
    return dict(
        loss_mask=balance * mask_loss, dice_error=mask_loss.detach(), mask_sb_weight=balance
    )

"""What the ranking adapters share: the loss config, its check and the 1 / 0 / -1 labels."""

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType

#: The registered names of the ranking losses a loss-neutral head accepts.
RANKING_LOSSES = ('aLRPLoss', 'APLoss', 'RankSortLoss')


def sigmoid_loss_cfg(loss_cls: ConfigType) -> dict:
    """``loss_cls`` with ``use_sigmoid=True`` unless it says otherwise: mmdet's heads read it to
    build one sigmoid logit per class (an explicit False reaches the loss, which refuses it)."""
    return dict(dict(use_sigmoid=True), **loss_cls)


def default_reg_decoded_bbox(loss_cls: ConfigType, reg_decoded_bbox: Optional[bool]) -> bool:
    """``reg_decoded_bbox`` as given or, if None, the ``decoded_boxes`` of the loss that
    ``loss_cls`` builds: the gt boxes themselves are the targets of a loss of decoded boxes
    (aLRPLoss, RankSortLoss), their encodings those of APLoss's regression loss."""
    if reg_decoded_bbox is not None:
        return reg_decoded_bbox
    loss_type = loss_cls.get('type')
    loss_class = MODELS.get(loss_type) if isinstance(loss_type, str) else loss_type
    return bool(getattr(loss_class, 'decoded_boxes', True))


def check_ranking_loss(head: nn.Module, loss_types: Sequence[str]) -> None:
    """Raises ValueError naming the head if its built ``loss_cls`` is not one of ``loss_types``
    or lacks the ranking interface (a ``decoded_boxes`` attribute, as aLRPLoss and APLoss)."""
    loss = type(head.loss_cls).__name__
    if loss not in loss_types or not hasattr(head.loss_cls, 'decoded_boxes'):
        needed = ' or '.join(f'dict(type="{t}")' for t in loss_types)
        raise ValueError(f'{type(head).__name__} needs loss_cls={needed}, got {loss}')


def refuse_loss_bbox(head: str, loss_bbox: OptConfigType) -> None:
    """Raises ValueError naming ``head`` if it is given a ``loss_bbox``: a ranking head's loss
    regresses the positives itself, so a ``loss_bbox`` would never be trained."""
    if loss_bbox is not None:
        raise ValueError(
            f'{head} does not use loss_bbox (got {loss_bbox!r}): its ranking loss regresses '
            'the positives itself. Set loss_bbox=None (APLoss takes a regression loss of its '
            'own: loss_cls=dict(type="APLoss", loss_bbox=...))'
        )


def ranking_labels(
    labels: Tensor, pos: Tensor, num_classes: int, ignored: Optional[Tensor] = None
) -> Tensor:
    """One-hot labels of a ranking loss from mmdet's class labels.

    Args:
        labels (Tensor): shape (A, ), int64 class of every prior, ``num_classes`` for background.
        pos (Tensor): shape (P, ), int64 indices of the positive priors.
        num_classes (int): number of classes C.
        ignored (Tensor, optional): shape (A, ), bool, priors that take no part in the loss.

    Returns:
        Tensor: shape (A, C), int8 with 1 (positive), 0 (negative) and -1 (ignored).
    """
    onehot = labels.new_zeros((labels.size(0), num_classes), dtype=torch.int8)
    onehot[pos, labels[pos]] = 1
    if ignored is not None:
        onehot[ignored] = -1
    return onehot

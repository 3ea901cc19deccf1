"""Which heads can feed a ranking loss: checked when the registry builds a head, else at the
loss's first call.

A ranking loss (aLRPLoss, APLoss, RankSortLoss) takes the logits and 1 / 0 / -1 labels of the
whole batch and the positives' boxes; it says so by its ``decoded_boxes`` attribute. A ranking
head (ours, or one with an adapter of :mod:`mmdet_alrp.models.dense_heads` or
:mod:`mmdet_alrp.models.roi_heads`) lists the losses it feeds in ``loss_types``. Every other head
of mmdet (RetinaHead, FCOSHead, GFLHead, BBoxHead, ...) calls its ``loss_cls`` per prior with
weights and an ``avg_factor``: it cannot feed a ranking loss.
"""

from typing import Any, Dict, Optional, Tuple

from mmdet.registry import MODELS

#: Where a user learns to give a head of their own a ranking adapter.
OWN_HEAD_DOC = 'docs/your_own_head.md'


def is_ranking_loss(loss_class: Any) -> bool:
    """Whether ``loss_class`` (a class or module) is a ranking loss."""
    return hasattr(loss_class, 'decoded_boxes')


def is_ranking_head(head_class: Any) -> bool:
    """Whether ``head_class`` (a class or module) is a ranking head."""
    return hasattr(head_class, 'loss_types')


def ranking_heads_of(loss_type: str) -> str:
    """The registered heads whose ``loss_types`` name ``loss_type``, comma-separated."""
    names = sorted(
        name
        for name, cls in MODELS.module_dict.items()
        if loss_type in getattr(cls, 'loss_types', ())
    )
    return ', '.join(names) or 'none registered'


def wrong_head_message(head: str, loss_type: str) -> str:
    """What to say when ``head`` (a name) is given the ranking loss ``loss_type``."""
    return (
        f'{loss_type} is a ranking loss and {head} cannot feed it: {head} calls its loss_cls '
        'per prior (with weights and avg_factor), a ranking loss takes the whole batch and the '
        f"positives' boxes. Use a ranking head that takes {loss_type} "
        f'({ranking_heads_of(loss_type)}) or give your head a ranking adapter: see {OWN_HEAD_DOC}'
    )


def _registered_class(registry, type_: Any) -> Optional[type]:
    if isinstance(type_, str):
        return registry.get(type_)
    return type_ if isinstance(type_, type) else None


def check_head_feeds_loss(cfg: Any, registry=MODELS) -> None:
    """Raises ValueError (:func:`wrong_head_message`) if ``cfg`` builds a head that is not a
    ranking head with a ``loss_cls`` that is a ranking loss; any other config passes."""
    if not hasattr(cfg, 'get') or not hasattr(cfg.get('loss_cls'), 'get'):
        return
    head_class = _registered_class(registry, cfg.get('type'))
    loss_class = _registered_class(registry, cfg['loss_cls'].get('type'))
    if head_class is None or loss_class is None:
        return
    if is_ranking_loss(loss_class) and not is_ranking_head(head_class):
        raise ValueError(wrong_head_message(head_class.__name__, loss_class.__name__))


def refuse_per_prior_call(loss, args: Tuple, kwargs: Dict[str, Any]) -> None:
    """Forward pre-hook of a ranking loss: a call with keywords (``avg_factor``, ``weight``,
    ...) comes from a head that calls its loss per prior, which gets a ValueError that says so
    (for a head built without the registry, which :func:`check_head_feeds_loss` cannot see)."""
    if kwargs:
        raise ValueError(
            wrong_head_message(
                'a head that passes ' + ', '.join(sorted(kwargs)), type(loss).__name__
            )
        )


def _checked_build(cfg, registry, default_args=None, *, build=MODELS.build_func):
    check_head_feeds_loss(cfg, registry)
    return build(cfg, registry, default_args)


if not getattr(MODELS.build_func, 'checks_ranking_heads', False):
    _checked_build.checks_ranking_heads = True
    MODELS.build_func = _checked_build

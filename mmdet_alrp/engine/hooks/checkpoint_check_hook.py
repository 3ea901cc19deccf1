"""Refuses a loaded checkpoint that does not fit the run, before it is used."""

import re
from typing import Dict, List

from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel, is_model_wrapper

from mmdet.registry import HOOKS

#: How many names a message lists.
SHOWN = 5


@HOOKS.register_module()
class CheckpointCheckHook(Hook):
    """Checks every checkpoint the runner loads (``load_from``, ``resume``), after the other
    hooks' ``after_load_checkpoint`` and before the weights enter the model.

    * When the run resumes (``cfg.resume``), the checkpoint must hold the training state that
      MMEngine's ``Runner.resume`` reads (``meta`` with ``epoch`` and ``iter``): a plain state
      dict raises a ``ValueError`` that says so (MMEngine would fail with ``KeyError: 'meta'``).
    * With ``strict``, every weight of the model must be in the checkpoint, of the model's shape:
      otherwise a ``ValueError`` lists the missing ones and those of another shape (MMEngine
      loads with ``strict=False`` and only warns). Keys of the checkpoint that the model lacks
      are left to MMEngine's warning.

    ``tools/test.py`` adds this hook with ``strict=True`` (``--no-strict``: False),
    ``tools/train.py`` with ``strict=False``.

    Args:
        strict (bool): refuse a checkpoint that leaves weights missing or of another shape.
            Defaults to True.
    """

    priority = 'LOWEST'

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        source = runner.cfg.get('load_from') or 'the checkpoint'
        if runner.cfg.get('resume', False):
            meta = checkpoint.get('meta')
            if not (isinstance(meta, dict) and 'epoch' in meta and 'iter' in meta):
                raise ValueError(
                    f'{source} holds no training state to resume (no meta with epoch and '
                    f'iter; its keys: {sorted(checkpoint)[:SHOWN]}): --resume needs a '
                    'checkpoint saved by a training. To start a training from its weights, '
                    f'load it instead: --cfg-options load_from={source}'
                )
        if self.strict:
            problems = mismatches(unwrapped_model(runner.model), checkpoint)
            if problems:
                raise ValueError(
                    f'{source} does not fit the model: {"; ".join(problems)}. '
                    'Check that the config and the checkpoint belong together '
                    '(tools/test.py --no-strict evaluates it anyway).'
                )


def unwrapped_model(model):
    """The model inside DDP-like and test-time-augmentation wrappers."""
    if is_model_wrapper(model):
        model = model.module
    return model.module if isinstance(model, BaseTTAModel) else model


def mismatches(model, checkpoint: dict) -> List[str]:
    """What of ``model``'s state dict ``checkpoint`` leaves missing or gives another shape, with
    the keys read as MMEngine reads them (``state_dict`` if present, ``module.`` stripped)."""
    state_dict: Dict = checkpoint.get('state_dict', checkpoint)
    shapes = {
        re.sub(r'^module\.', '', key): tuple(getattr(value, 'shape', ()))
        for key, value in state_dict.items()
    }
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    missing = [key for key in expected if key not in shapes]
    reshaped = [
        f'{key} {shapes[key]} in the checkpoint, {shape} in the model'
        for key, shape in expected.items()
        if key in shapes and shapes[key] != shape
    ]
    problems = []
    if missing:
        problems.append(f'{len(missing)} model weights missing from it ({listed(missing)})')
    if reshaped:
        problems.append(f'{len(reshaped)} of another shape ({listed(reshaped)})')
    return problems


def listed(names: List[str]) -> str:
    """The first :data:`SHOWN` names, comma-separated, ``...`` if there are more."""
    return ', '.join(names[:SHOWN]) + (', ...' if len(names) > SHOWN else '')

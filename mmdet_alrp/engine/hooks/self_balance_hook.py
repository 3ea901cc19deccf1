"""Ends the self-balance periods of every aLRP loss of the model."""

import numbers
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS

from ...models.losses.self_balance import SelfBalance


@HOOKS.register_module()
class SelfBalanceHook(Hook):
    """Updates every :class:`SelfBalance` of the model at the end of each period.

    Before training it marks them as updated: an SB that trains without the hook warns at its
    first batch that it stays at its initial value.

    Args:
        period (int, optional): iterations per period, a positive int. Defaults to None: one
            training epoch, the length of the train dataloader, whatever the dataset and batch
            size (also under an iteration-based loop).
    """

    priority = 'NORMAL'

    def __init__(self, period: Optional[int] = None) -> None:
        if period is not None and (
            isinstance(period, bool) or not isinstance(period, numbers.Integral) or period < 1
        ):
            raise ValueError(
                f'period must be a positive int (iterations per period) or None, got {period!r}'
            )
        self.period = None if period is None else int(period)

    def before_train(self, runner) -> None:
        for module in self_balances(runner):
            module.updated_by_hook = True

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        period = self.period or len(runner.train_dataloader)
        if (runner.iter + 1) % period:
            return
        for module in self_balances(runner):
            module.update()


def self_balances(runner) -> List[SelfBalance]:
    """Every :class:`SelfBalance` of the runner's model (inside a DDP-like wrapper)."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    return [module for module in model.modules() if isinstance(module, SelfBalance)]

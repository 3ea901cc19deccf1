from .checkpoint_check_hook import CheckpointCheckHook
from .self_balance_hook import SelfBalanceHook

__all__ = ['CheckpointCheckHook', 'SelfBalanceHook']

from .self_balance_hook import SelfBalanceHook

__all__ = ['SelfBalanceHook']

# The runtime of an aLRP Loss detector: SelfBalanceHook updates the self-balance (SB) weight of
# every aLRP Loss of the model at the end of each epoch (SelfBalanceHook(period=N) for every N
# iterations).
_base_ = './default_runtime.py'

custom_hooks = [dict(type='SelfBalanceHook')]

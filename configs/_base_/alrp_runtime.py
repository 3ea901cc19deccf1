# The runtime of an aLRP Loss detector: SelfBalanceHook updates the self-balance (SB) weight of
# every aLRP Loss of the model at the end of each epoch (SelfBalanceHook(period=N) for every N
# iterations).
# Deliberate differences from the paper's code: (1) the period is one epoch; the paper's heads
# hard-code 3665 iterations, one epoch of COCO train2017 at 32 images an iteration, and so half
# an epoch for the 800-scale rows (16 images an iteration). (2) SB averages the losses of every
# rank (all-reduced), where each of the paper's GPUs kept its own history and SB. (3) SB and its
# running sums are saved in the checkpoint (a resumed run continues them); the paper's were not.
_base_ = './default_runtime.py'

custom_hooks = [dict(type='SelfBalanceHook')]

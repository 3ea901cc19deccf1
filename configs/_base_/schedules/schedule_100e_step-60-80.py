# The 100-epoch schedule (schedule_100e_step-75-95.py) with lr divided by 10 after epochs 60
# and 80.
_base_ = './schedule_100e_step-75-95.py'

param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], milestones=[60, 80]),
]

# 36 epochs of SGD (momentum 0.9, weight decay 1e-4), a linear warm-up over the first 500
# iterations from 0.001 x lr, lr divided by 10 after epochs 27 and 33. Rows set their lr.
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'

train_cfg = dict(max_epochs=36)
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], end=36, milestones=[27, 33]),
]

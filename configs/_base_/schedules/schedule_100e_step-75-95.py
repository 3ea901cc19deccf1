# 100 epochs of SGD (momentum 0.9, weight decay 1e-4), a linear warm-up over the first 500
# iterations from 0.001 x lr, lr divided by 10 after epochs 75 and 95. Rows set their lr.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=0.008, momentum=0.9, weight_decay=0.0001)
)

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=100, milestones=[75, 95], gamma=0.1),
]

# MMDetection's runtime with mmdet_alrp's modules registered (heads, losses, CocoLRPMetric) and
# a checkpoint every epoch, the last 3 kept (so the final epoch's is always there). No "best"
# checkpoint: the paper reports the model of the last epoch, and picking one by its AP on the
# split the results are reported on (minival) would select on the evaluation data.
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['mmdet_alrp'], allow_failed_imports=False)

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))

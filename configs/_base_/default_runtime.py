# MMDetection's runtime with mmdet_alrp's modules registered (heads, losses, CocoLRPMetric),
# a checkpoint every epoch (the last 3 kept) and the best one by COCO AP.
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['mmdet_alrp'], allow_failed_imports=False)

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='auto'))

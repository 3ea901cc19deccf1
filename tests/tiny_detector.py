"""A tiny aLRP Loss RetinaNet config on synthetic-shapes data, and a hook that digests its
weights.

The config trains in seconds on CPU: a ResNet-18 with 8 base channels, no pretrained weights,
64 px images, an iteration-based loop (2 iterations, a checkpoint every 2) with MMDetection's
usual warm-up and step schedulers, and COCO evaluation (``score_thr=0`` so that an untrained
model still predicts boxes).
"""

import hashlib
import json
import os.path as osp

from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS
from mmdet_alrp.demo import CLASSES

TEMPLATE = """
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py', 'mmdet::_base_/default_runtime.py']
custom_imports = dict(imports={imports!r}, allow_failed_imports=False)
data_root = {data_root!r}
metainfo = dict(classes={classes!r})
model = dict(
    backbone=dict(depth=18, base_channels=8, init_cfg=None),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    bbox_head=dict(type='aLRPRetinaHead', num_classes={num_classes}, in_channels=16,
                   feat_channels=16, stacked_convs=1,
                   loss_cls=dict(_delete_=True, type='aLRPLoss',
                                 self_balance=dict(type='SelfBalance', init_weight=50.)),
                   loss_bbox=None),
    test_cfg=dict(score_thr=0.0))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=0), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoLRPMetric',
                     ann_file=data_root + '/annotations/instances_val.json', metric='bbox')
test_evaluator = val_evaluator
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=100, milestones=[3], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=2))
custom_hooks = {hooks!r}
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
"""


def write_tiny_config(
    path: str, data_root: str, extra: str = '', imports=('mmdet_alrp',), hooks=()
) -> str:
    """Writes the tiny config to ``path`` and returns ``path``: with the config text ``extra``
    appended, ``imports`` as custom_imports and ``hooks`` after SelfBalanceHook."""
    with open(path, 'w') as f:
        f.write(
            TEMPLATE.format(
                imports=list(imports),
                data_root=data_root,
                classes=tuple(CLASSES),
                num_classes=len(CLASSES),
                hooks=[dict(type='SelfBalanceHook'), *hooks],
            )
            + extra
        )
    return path


def param_digest(named_tensors) -> str:
    """SHA-256 of the names and exact bytes of ``(name, tensor)`` pairs."""
    digest = hashlib.sha256()
    for name, tensor in named_tensors:
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@HOOKS.register_module()
class ParamDigestHook(Hook):
    """After training, writes ``param_digest_rank{rank}.json`` to the work directory: the rank,
    world size, model wrapper, iteration, parameter names, :func:`param_digest` and the
    self-balance buffers."""

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        rank, world_size = get_dist_info()
        names = [name for name, _ in model.named_parameters()]
        self_balance = {
            name: value.tolist() for name, value in model.named_buffers() if 'self_balance' in name
        }
        with open(osp.join(runner.work_dir, f'param_digest_rank{rank}.json'), 'w') as f:
            json.dump(
                dict(
                    rank=rank,
                    world_size=world_size,
                    iter=runner.iter,
                    names=names,
                    wrapper=type(runner.model).__name__,
                    self_balance=self_balance,
                    digest=param_digest(model.named_parameters()),
                ),
                f,
            )

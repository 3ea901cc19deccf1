"""Importing mmdet_alrp registers every public class of ours in mmdet's registries."""

import importlib
import inspect
import pkgutil

import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope

import mmdet_alrp
from mmdet.registry import DATASETS, HOOKS, METRICS, MODELS


def public_classes():
    """Every class our packages export (``__all__``), by the registry that must hold it."""
    found = {}
    for info in pkgutil.walk_packages(mmdet_alrp.__path__, 'mmdet_alrp.'):
        module = importlib.import_module(info.name)
        for name in getattr(module, '__all__', []):
            obj = getattr(module, name)
            if inspect.isclass(obj):
                for base, registry in (
                    (torch.nn.Module, MODELS),
                    (Hook, HOOKS),
                    (BaseMetric, METRICS),
                ):
                    if issubclass(obj, base):
                        found[name] = (obj, registry)
    return found


def test_every_public_class_is_registered_in_the_mmdet_scope():
    classes = public_classes()
    assert {
        'aLRPLoss',
        'APLoss',
        'SelfBalance',
        'SelfBalanceHook',
        'aLRPATSSHead',
        'aLRPFCOSHead',
    } <= set(classes)
    for name, (cls, registry) in classes.items():
        assert registry.scope == 'mmdet'
        assert registry.get(name) is cls, f'{name} is not in mmdet.registry.{registry.name}'


def test_configs_build_our_modules_by_name():
    init_default_scope('mmdet')
    loss = MODELS.build(dict(type='aLRPLoss', delta=0.5))
    assert loss.delta == 0.5
    hook = HOOKS.build(dict(type='SelfBalanceHook', period=10))
    assert hook.period == 10
    assert DATASETS.get('CocoDataset') is not None

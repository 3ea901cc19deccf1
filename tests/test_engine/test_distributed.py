"""setup_cpu_distributed: gloo process group and DDP without device_ids when CUDA is absent."""

import socket

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config

from mmdet_alrp.engine.distributed import setup_cpu_distributed


@pytest.fixture
def single_process_env(monkeypatch):
    """torchrun's environment for a world of one process, and no CUDA."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    for key, value in dict(
        RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port)
    ).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    yield
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def test_nothing_to_do_without_launcher():
    cfg = Config(dict(launcher='none'))
    assert not setup_cpu_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg


def test_gloo_group_and_default_wrapper(single_process_env):
    set_device = torch.cuda.set_device
    cfg = Config(
        dict(
            launcher='pytorch',
            find_unused_parameters=True,
            env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=60)),
        )
    )
    assert setup_cpu_distributed(cfg)
    assert torch_dist.is_initialized() and torch_dist.get_backend() == 'gloo'
    assert cfg.env_cfg.dist_cfg == dict(backend='gloo', timeout=60)
    assert torch.cuda.set_device is set_device  # restored
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel',
        device_ids=None,
        broadcast_buffers=False,
        find_unused_parameters=True,
    )
    assert not setup_cpu_distributed(cfg)  # the group exists already


def test_config_wrapper_keeps_its_settings(single_process_env):
    cfg = Config(
        dict(
            launcher='pytorch',
            model_wrapper_cfg=dict(type='MMDistributedDataParallel', find_unused_parameters=True),
        )
    )
    assert setup_cpu_distributed(cfg)
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel', device_ids=None, find_unused_parameters=True
    )


def test_non_ddp_wrapper_gets_no_device_ids(single_process_env):
    cfg = Config(
        dict(launcher='pytorch', model_wrapper_cfg=dict(type='MMFullyShardedDataParallel'))
    )
    assert setup_cpu_distributed(cfg)
    assert cfg.model_wrapper_cfg == dict(type='MMFullyShardedDataParallel')

"""Multi-process training and testing on machines without CUDA (gloo on CPU).

MMEngine 0.10.7 assumes CUDA for its launchers: ``init_dist`` calls ``torch.cuda.set_device``
and the runner wraps the model in DDP with ``device_ids=[LOCAL_RANK]``, which a CPU module
refuses. :func:`setup_cpu_distributed` covers both when CUDA is absent, so that
``tools/dist_train.sh CONFIG 2`` also runs on a laptop, e.g. to debug multi-process code.
"""

import contextlib
from typing import Iterator

import torch
from mmengine.config import Config
from mmengine.dist import init_dist, is_distributed
from torch.nn.parallel import DistributedDataParallel

from mmdet.registry import MODEL_WRAPPERS


@contextlib.contextmanager
def _without_cuda_set_device() -> Iterator[None]:
    """Makes ``torch.cuda.set_device`` a no-op inside the block."""
    set_device = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = set_device


def setup_cpu_distributed(cfg: Config) -> bool:
    """Starts the gloo process group of ``cfg.launcher`` when CUDA is absent.

    Call it before building the runner (which then finds the process group started). It
    initialises the group with the config's ``env_cfg.dist_cfg`` but ``backend='gloo'`` (and
    writes that back to the config), and makes ``cfg.model_wrapper_cfg`` a DDP wrapper without
    ``device_ids`` (MMEngine's default wrapper arguments when the config has none).

    Returns:
        bool: whether it did anything: False with CUDA, without a launcher, or when a process
        group already exists.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available() or is_distributed():
        return False
    env_cfg = cfg.get('env_cfg') or {}
    dist_cfg = dict(env_cfg.get('dist_cfg') or {}, backend='gloo')
    with _without_cuda_set_device():
        init_dist(launcher, **dist_cfg)
    cfg.env_cfg = dict(env_cfg, dist_cfg=dist_cfg)  # what the runner logs
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        wrapper = dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
        )
    wrapper_type = wrapper.get('type', 'MMDistributedDataParallel')
    if isinstance(wrapper_type, str):
        wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
    if isinstance(wrapper_type, type) and issubclass(wrapper_type, DistributedDataParallel):
        wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper
    return True

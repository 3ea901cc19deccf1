"""MMEngine's remote checkpoint schemes, loaded with :func:`load_weights_only`.

MMEngine 0.10.7 loads ``http://`` and ``https://`` checkpoints, and the ``torchvision://``
(``modelzoo://``), ``open-mmlab://`` (``openmmlab://``) and ``mmcls://`` names that resolve to
them, with ``torch.hub.load_state_dict_from_url``, which unpickles with full pickle
(``weights_only=False``): a crafted file, served or already in the torch hub cache, would run
its code. Importing this module registers, in their place, loaders that download to the same
cache (``$TORCH_HOME/hub/checkpoints``, file named as the URL's) and load the cached file with
:func:`load_weights_only`. Names resolve as MMEngine resolves them; ``torchvision://`` names of
MMEngine's list of torchvision 0.12 weights need no torchvision install.
"""

import os
import os.path as osp
from typing import Optional
from urllib.parse import urlparse

import mmengine
import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import load as load_file
from mmengine.logging import print_log
from mmengine.runner.checkpoint import (
    CheckpointLoader,
    _get_mmengine_home,
    _process_mmcls_checkpoint,
    get_deprecated_model_names,
    get_external_models,
    get_mmcls_models,
    get_torchvision_models,
)

from .checkpoint import load_from_local, load_weights_only

#: MMEngine's names of torchvision's weights (torchvision 0.12), read without torchvision.
TORCHVISION_URLS = osp.join(mmengine.__path__[0], 'hub', 'torchvision_0.12.json')


def cached_download(url: str, model_dir: Optional[str] = None, progress: bool = False) -> str:
    """The path of ``url``'s file in the torch hub cache, downloaded first if not there.

    Args:
        url (str): an ``http://`` or ``https://`` URL.
        model_dir (str, optional): the cache folder. Defaults to
            ``torch.hub.get_dir()/checkpoints``.
        progress (bool): show a progress bar. Defaults to False.
    """
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    file_name = osp.basename(urlparse(url).path)
    if not file_name:
        raise ValueError(f'{url} names no file: a checkpoint URL ends with the file name')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, file_name)
    if not osp.exists(cached):
        print_log(f'Downloading {url} to {cached}', logger='current')
        torch.hub.download_url_to_file(url, cached, progress=progress)
    return cached


@CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), force=True)
def load_from_http(
    filename: str, map_location=None, model_dir: Optional[str] = None, progress: bool = os.isatty(0)
):
    """Loads a checkpoint from a URL through the torch hub cache, weights only. Under
    distributed training rank 0 downloads it first, the other ranks then read the cache.

    Raises:
        UnsafeCheckpointError, CorruptCheckpointError: see :func:`load_weights_only`.
    """
    rank, world_size = get_dist_info()
    if rank == 0:
        cached = cached_download(filename, model_dir, progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            cached = cached_download(filename, model_dir, progress)
    return load_weights_only(cached, map_location, source=f'{filename} (cached as {cached})')


def _model_name(filename: str) -> str:
    return filename.split('://', 1)[1]


@CheckpointLoader.register_scheme(prefixes=('modelzoo://', 'torchvision://'), force=True)
def load_from_torchvision(filename: str, map_location=None):
    """Loads ``torchvision://NAME`` (or the deprecated ``modelzoo://NAME``), weights only."""
    name = _model_name(filename)
    urls = load_file(TORCHVISION_URLS)
    if name not in urls:  # torchvision >= 0.13's names ('resnet50.imagenet1k_v2', ...)
        urls = get_torchvision_models()
    if name not in urls:
        raise KeyError(f'{filename}: no torchvision weights are named {name!r}')
    return load_from_http(urls[name], map_location=map_location)


@CheckpointLoader.register_scheme(prefixes=('open-mmlab://', 'openmmlab://'), force=True)
def load_from_openmmlab(filename: str, map_location=None):
    """Loads ``open-mmlab://NAME`` (or ``openmmlab://NAME``), weights only: a URL of MMEngine's
    list (or of ``$MMENGINE_HOME/open_mmlab.json``), or a file under ``$MMENGINE_HOME``."""
    name = _model_name(filename)
    deprecated = get_deprecated_model_names()
    if name in deprecated:
        print_log(f'{filename} is deprecated in favour of {deprecated[name]}', logger='current')
        name = deprecated[name]
    urls = get_external_models()
    if name not in urls:
        raise KeyError(f'{filename}: no OpenMMLab model is named {name!r}')
    if urls[name].startswith(('http://', 'https://')):
        return load_from_http(urls[name], map_location=map_location)
    return load_from_local(osp.join(_get_mmengine_home(), urls[name]), map_location)


@CheckpointLoader.register_scheme(prefixes='mmcls://', force=True)
def load_from_mmcls(filename: str, map_location=None):
    """Loads ``mmcls://NAME``, weights only, keeping the backbone's weights as MMEngine does."""
    name = _model_name(filename)
    urls = get_mmcls_models()
    if name not in urls:
        raise KeyError(f'{filename}: no MMClassification model is named {name!r}')
    return _process_mmcls_checkpoint(load_from_http(urls[name], map_location=map_location))

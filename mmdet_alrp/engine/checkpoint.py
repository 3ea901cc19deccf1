"""Loads MMEngine checkpoints under torch's weights-only unpickler (torch >= 2.6).

``torch.load`` defaults to ``weights_only=True`` since torch 2.6, and MMEngine 0.10.7 checkpoints
hold a few objects beside tensors that it refuses: the message hub's
:class:`~mmengine.logging.HistoryBuffer` objects, the numpy arrays, dtypes and scalars in them,
and their statistics methods, which pickle writes as ``getattr(HistoryBuffer, 'min')``.
Importing this module allow-lists exactly those (:data:`MMENGINE_CHECKPOINT_GLOBALS`) with
``torch.serialization.add_safe_globals``, ``getattr`` in a form restricted to those methods, so
that ``tools/test.py CKPT`` and ``tools/train.py --resume`` work while weights-only loading stays
on. It also replaces MMEngine's loader of local files with one that, on any other global, raises
:class:`UnsafeCheckpointError` naming the globals and telling how to allow them.
"""
import os.path as osp
import pickle
from typing import List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to the default statistics methods of HistoryBuffer."""
    if obj is not HistoryBuffer or name not in HISTORY_BUFFER_STATISTICS:
        raise pickle.UnpicklingError(
            f'getattr({obj!r}, {name!r}) is not allowed: mmdet_alrp lets weights-only loading '
            f'call getattr only for the methods {HISTORY_BUFFER_STATISTICS} of HistoryBuffer')
    return getattr(obj, name)


MMENGINE_CHECKPOINT_GLOBALS = [
    HistoryBuffer,
    np.core.multiarray._reconstruct,
    np.core.multiarray.scalar,
    np.ndarray,
    np.dtype,
    type(np.dtype(np.float64)),  # the dtypes of the arrays of Python floats and ints
    type(np.dtype(np.int_)),
    (history_buffer_getattr, 'builtins.getattr'),
]

torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds globals that weights-only loading does not allow."""


def unsafe_globals_message(filename: str, unsafe: List[str]) -> str:
    return (
        f'{filename} holds objects that torch.load(weights_only=True) does not allow: '
        f'{", ".join(unsafe)}. '
        'mmdet_alrp allows only the types MMEngine itself writes. If you trust this file, '
        'allow these globals before loading it, e.g. in a module of custom_imports: '
        'torch.serialization.add_safe_globals([<the class or function>]), or load it with '
        'full pickle by setting TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1.')


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location=None):
    """Loads a local checkpoint with torch's default (weights-only) unpickler.

    Raises:
        UnsafeCheckpointError: the file holds globals that are not allowed.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        return torch.load(filename, map_location=map_location)
    except pickle.UnpicklingError as error:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        if not unsafe:
            raise
        raise UnsafeCheckpointError(unsafe_globals_message(filename, unsafe)) from error

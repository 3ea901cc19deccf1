"""Loads checkpoints under torch's weights-only unpickler, whatever their source and format.

``torch.load`` defaults to ``weights_only=True`` since torch 2.6, and MMEngine 0.10.7 checkpoints
hold a few objects beside tensors that it refuses: the message hub's
:class:`~mmengine.logging.HistoryBuffer` objects, the numpy arrays, dtypes and scalars in them,
and their statistics methods, which pickle writes as ``getattr(HistoryBuffer, 'min')``.
Importing this module allow-lists exactly those (:data:`MMENGINE_CHECKPOINT_GLOBALS`) with
``torch.serialization.add_safe_globals``, ``getattr`` in a form restricted to those methods.

:func:`load_weights_only` loads a file (a ``torch.save`` zip archive, a legacy ``torch.save``
file or a plain pickle) with ``weights_only=True`` passed explicitly, so that no environment
variable turns it off. On any other global it raises :class:`UnsafeCheckpointError` naming the
globals; an empty, truncated or garbled file raises :class:`CorruptCheckpointError`. Importing
this module makes it the loader of MMEngine's local files; :mod:`.remote_checkpoints` makes it
the loader of the remote ones (``http(s)://``, ``torchvision://``, ``open-mmlab://``,
``mmcls://`` and the torch hub cache).
"""

import io
import os
import os.path as osp
import pickle
import zipfile
from contextlib import nullcontext
from typing import BinaryIO, List, Optional, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from .pickle_globals import refused_globals

HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
ZIP_MAGIC = b'PK\x03\x04'


def history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to the default statistics methods of HistoryBuffer."""
    if obj is not HistoryBuffer or name not in HISTORY_BUFFER_STATISTICS:
        raise pickle.UnpicklingError(
            f'getattr({obj!r}, {name!r}) is not allowed: mmdet_alrp lets weights-only loading '
            f'call getattr only for the methods {HISTORY_BUFFER_STATISTICS} of HistoryBuffer'
        )
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


class CorruptCheckpointError(ValueError):
    """A checkpoint file is empty, truncated or not a checkpoint at all."""


def unsafe_globals_message(filename: str, unsafe: List[str]) -> str:
    return (
        f'{filename} holds objects that torch.load(weights_only=True) does not allow: '
        f'{", ".join(unsafe)}. Nothing of the file was run. '
        'mmdet_alrp allows only the types MMEngine itself writes. If you trust this file, '
        'allow these globals before loading it, e.g. in a module of custom_imports: '
        'torch.serialization.add_safe_globals([<the class or function>]).'
    )


def _check_container(stream: BinaryIO, source: str) -> None:
    """Refuses an empty file and a zip archive cut off before its central directory."""
    size = stream.seek(0, os.SEEK_END)
    if size == 0:
        raise CorruptCheckpointError(
            f'{source} is empty (0 bytes): it is not a checkpoint (an interrupted download or '
            'save?); delete it and download or save it again'
        )
    stream.seek(0)
    if stream.read(4) == ZIP_MAGIC and not zipfile.is_zipfile(stream):
        raise CorruptCheckpointError(
            f'{source} is a truncated or damaged zip archive ({size} bytes, no central '
            'directory): delete it and download or save it again'
        )
    stream.seek(0)


def _single_file_of_zip(stream: BinaryIO) -> Optional[bytes]:
    """The member of a zip holding one file (torch.hub's legacy zip format), else None."""
    if not zipfile.is_zipfile(stream):
        return None
    stream.seek(0)
    with zipfile.ZipFile(stream) as archive:
        members = archive.infolist()
        if len(members) == 1 and not members[0].is_dir():
            return archive.read(members[0])
    return None


def load_weights_only(file: Union[str, BinaryIO], map_location=None, source: Optional[str] = None):
    """Loads a checkpoint with ``torch.load(weights_only=True)`` and the allow-list in force.

    Args:
        file (str | BinaryIO): path of the file, or the file opened for binary reading
            (seekable). A zip archive of ``torch.save``, a legacy ``torch.save`` file, a plain
            pickle, or a zip holding one such file (torch.hub's legacy zip format).
        map_location: as :func:`torch.load`.
        source (str, optional): how errors name the file. Defaults to ``file`` itself.

    Raises:
        UnsafeCheckpointError: the file names globals the allow-list does not hold (named in the
            message); none of them is imported and nothing of the file runs.
        CorruptCheckpointError: the file is empty, truncated or not a checkpoint.
    """
    source = source or (file if isinstance(file, str) else repr(file))
    with open(file, 'rb') if isinstance(file, str) else nullcontext(file) as stream:
        _check_container(stream, source)
        inner = _single_file_of_zip(stream)
        if inner is not None:
            return load_weights_only(io.BytesIO(inner), map_location, f'{source} (the file in it)')
        stream.seek(0)
        try:
            return torch.load(
                file if isinstance(file, str) else stream,
                map_location=map_location,
                weights_only=True,
            )
        except Exception as error:  # the unpickler fails with errors of many types
            refused, whole = refused_globals(stream)
            if refused:
                raise UnsafeCheckpointError(unsafe_globals_message(source, refused)) from error
            if not whole or isinstance(error, EOFError) or _ends_early(error):
                raise CorruptCheckpointError(
                    f'{source} is truncated or is not a checkpoint ({type(error).__name__}: '
                    f'{str(error)[:200]}); delete it and download or save it again'
                ) from error
            if isinstance(error, pickle.UnpicklingError):
                raise UnsafeCheckpointError(
                    f'{source} was refused by weights-only loading: {error}'
                ) from error
            raise


def _ends_early(error: Exception) -> bool:
    """Whether torch's error says that the file ends before its storages do."""
    return isinstance(error, RuntimeError) and (
        'EOF' in str(error) or 'corrupt' in str(error).lower()
    )


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location=None):
    """Loads a local checkpoint with :func:`load_weights_only`.

    Raises:
        FileNotFoundError: there is no such file.
        UnsafeCheckpointError: the file holds globals that are not allowed.
        CorruptCheckpointError: the file is empty, truncated or not a checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return load_weights_only(filename, map_location)

"""The globals a checkpoint's pickles name, read without unpickling anything.

A checkpoint is a zip archive of ``torch.save`` (its pickles are the ``data.pkl`` records), a
legacy ``torch.save`` file (several pickles one after the other, then the raw storages) or a
plain pickle. :func:`pickled_globals` disassembles its pickles with :mod:`pickletools`, which
only parses opcodes, and returns every global (class or function) a ``GLOBAL``, ``INST`` or
``STACK_GLOBAL`` opcode would import. :func:`weights_only_admits` asks torch's weights-only
unpickler itself whether it admits one global: it unpickles a pickle holding that global alone.
"""

import _compat_pickle
import io
import pickle
import pickletools
import zipfile
from typing import BinaryIO, Iterator, List, Optional, Tuple

import torch

#: A legacy ``torch.save`` file holds five pickles (magic number, protocol, system info, the
#: object, the storage keys) before the raw storages, which are not pickles.
LEGACY_PICKLES = 5

#: The name given to a STACK_GLOBAL whose module and name are not plain strings of the pickle.
UNRESOLVED_GLOBAL = '<a global whose name the pickle computes>'

STRING_OPCODES = {
    'STRING',
    'BINSTRING',
    'SHORT_BINSTRING',
    'UNICODE',
    'SHORT_BINUNICODE',
    'BINUNICODE',
    'BINUNICODE8',
}
GET_OPCODES = {'GET', 'BINGET', 'LONG_BINGET'}
PUT_OPCODES = {'PUT', 'BINPUT', 'LONG_BINPUT'}
NO_PUSH_OPCODES = {'PROTO', 'FRAME', 'STOP', 'MEMOIZE'} | PUT_OPCODES


def read_pickle_globals(stream: BinaryIO, found: List[str]) -> bool:
    """Appends to ``found`` the ``module.name`` of every global one pickle of ``stream``
    imports, in order, and leaves the stream after the pickle's STOP.

    Returns:
        bool: whether the pickle is whole (False: it ends early or holds an unknown opcode;
        ``found`` then holds the globals before that point).
    """
    pushed: List[Optional[str]] = []  # what each opcode pushed: a string, else None
    memo = {}
    try:
        for opcode, arg, _ in pickletools.genops(stream):
            name = opcode.name
            if name in ('GLOBAL', 'INST'):
                module, attribute = arg.split(' ', 1)
                # protocols 0-2 write Python 2 names, which unpickling maps to Python 3's
                module = _compat_pickle.IMPORT_MAPPING.get(module, module)
                found.append(f'{module}.{attribute}')
            elif name == 'STACK_GLOBAL':
                module, attribute = pushed[-2:] if len(pushed) >= 2 else (None, None)
                resolved = isinstance(module, str) and isinstance(attribute, str)
                found.append(f'{module}.{attribute}' if resolved else UNRESOLVED_GLOBAL)
            elif name == 'MEMOIZE':
                memo[len(memo)] = pushed[-1] if pushed else None
            elif name in PUT_OPCODES:
                memo[arg] = pushed[-1] if pushed else None
            if name in STRING_OPCODES:
                pushed.append(arg if isinstance(arg, str) else arg.decode('latin-1'))
            elif name in GET_OPCODES:
                pushed.append(memo.get(arg))
            elif name not in NO_PUSH_OPCODES:
                pushed.append(None)
    except ValueError:  # pickletools' way of saying that the pickle is cut off or garbled
        return False
    return True


def _pickles(stream: BinaryIO) -> Iterator[BinaryIO]:
    """The pickle streams of a checkpoint file (each is read to its end before the next)."""
    stream.seek(0)
    if zipfile.is_zipfile(stream):
        stream.seek(0)
        with zipfile.ZipFile(stream) as archive:
            for member in archive.namelist():
                if member.endswith('.pkl'):
                    yield io.BytesIO(archive.read(member))
        return
    stream.seek(0)
    for _ in range(LEGACY_PICKLES):
        start = stream.tell()
        if not stream.read(1):
            return
        stream.seek(start)
        yield stream


def pickled_globals(stream: BinaryIO) -> Tuple[List[str], bool]:
    """The distinct globals (``module.name``) the pickles of a checkpoint import, in order.

    Args:
        stream (BinaryIO): the checkpoint file, opened for binary reading and seekable.

    Returns:
        tuple[list[str], bool]: the globals, and whether every pickle was whole (False for a
        truncated or garbled file: the globals are then those before the break).
    """
    found: List[str] = []
    whole = True
    for pickled in _pickles(stream):
        if not read_pickle_globals(pickled, found):
            whole = False
            break
    return list(dict.fromkeys(found)), whole


def weights_only_admits(global_name: str) -> bool:
    """Whether ``torch.load(weights_only=True)`` admits the global ``module.name``, with the
    allow-list in force now (torch's own and ``add_safe_globals``)."""
    module, _, name = global_name.rpartition('.')
    if global_name == UNRESOLVED_GLOBAL or not module or '\n' in global_name:
        return False
    probe = io.BytesIO(b'c' + f'{module}\n{name}\n'.encode() + b'.')
    try:
        torch.load(probe, weights_only=True)
    except pickle.UnpicklingError:
        return False
    except Exception:  # admitted, then rejected as no checkpoint (no magic number)
        return True
    return True


def refused_globals(stream: BinaryIO) -> Tuple[List[str], bool]:
    """The globals of a checkpoint that weights-only loading refuses, and whether every pickle
    of the file was whole (see :func:`pickled_globals`)."""
    names, whole = pickled_globals(stream)
    return [name for name in names if not weights_only_admits(name)], whole

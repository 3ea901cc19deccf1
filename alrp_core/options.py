"""The run-time options of the ranking core: which kernels run, the relevant-negative filter,
the torch-op chunk size and the per-pass timer, set for a block by :func:`ranking_options`.

    with ranking_options(backend='torch', torch_chunk=4096):
        loss_cls, loss_loc = alrp_loss(logits, targets, loc_errors)

The environment variable ALRP_CORE_BACKEND sets the backend a process starts with. A batch
reads the options once, when it is prepared (the scan), and keeps them for its later passes;
the pass timer is read by each pass.
"""

import dataclasses
import os
import time
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

#: The values of ``backend``: 'auto' takes the C++ op on a CPU where it is built, on CUDA the
#: kernels ``alrp_core.backends.CUDA_AUTO`` names, and the torch ops otherwise.
BACKEND_NAMES = ('auto', 'cpp', 'triton', 'torch')


@dataclasses.dataclass(frozen=True)
class RankingOptions:
    """Options of the ranking core.

    Attributes:
        backend (str): the kernels of the passes over the M logits, one of
            :data:`BACKEND_NAMES`. Defaults to ALRP_CORE_BACKEND, else 'auto'.
        filter_negatives (bool): skip the negatives below every positive's window (they count
            for nothing). Defaults to True.
        torch_chunk (int, optional): logits per chunk of the torch-op passes (bounds their
            temporaries); None: 2^20 on a CPU, 2^24 on CUDA.
        pass_seconds (dict, optional): where a dict, the wall seconds of each pass over the M
            logits ('scan', 'histogram', 'gradient') are added to it, summed over calls. CPU
            timing only (no CUDA synchronisation is added).
    """

    backend: str = 'auto'
    filter_negatives: bool = True
    torch_chunk: Optional[int] = None
    pass_seconds: Optional[Dict[str, float]] = None

    def __post_init__(self) -> None:
        if self.backend not in BACKEND_NAMES:
            raise ValueError(
                f'ranking core backend (ALRP_CORE_BACKEND or ranking_options(backend=...)) must '
                f'be one of {BACKEND_NAMES}, got {self.backend!r}'
            )
        if self.torch_chunk is not None and not (
            isinstance(self.torch_chunk, int) and self.torch_chunk > 0
        ):
            raise ValueError(f'torch_chunk must be a positive int, got {self.torch_chunk!r}')

    def chunk(self, is_cuda: bool) -> int:
        """Logits per chunk of the torch-op passes on a CPU or on CUDA."""
        if self.torch_chunk is not None:
            return self.torch_chunk
        return 1 << 24 if is_cuda else 1 << 20


_current = RankingOptions(backend=os.environ.get('ALRP_CORE_BACKEND', 'auto'))


def current_options() -> RankingOptions:
    """The options in force."""
    return _current


@contextmanager
def ranking_options(**changes) -> Iterator[RankingOptions]:
    """Sets the named fields of :class:`RankingOptions` inside the block (the others stay as
    they are) and yields the options in force there; unknown names raise a TypeError."""
    global _current
    previous = _current
    _current = dataclasses.replace(previous, **changes)
    try:
        yield _current
    finally:
        _current = previous


@contextmanager
def timed(name: str) -> Iterator[None]:
    """Adds the wall seconds of the block to ``pass_seconds[name]`` where the options collect
    them."""
    seconds = _current.pass_seconds
    if seconds is None:
        yield
        return
    start = time.perf_counter()
    yield
    seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start

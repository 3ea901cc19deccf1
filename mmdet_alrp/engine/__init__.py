from . import (
    checkpoint,  # noqa: F401  (torch weights-only loading of MMEngine checkpoints)
    remote_checkpoints,  # noqa: F401  (the same for http(s):// and model names)
)
from .hooks import *  # noqa: F403

from .hooks import *  # noqa: F401,F403
from . import checkpoint  # noqa: F401  (torch weights-only loading of MMEngine checkpoints)
from . import remote_checkpoints  # noqa: F401  (the same for http(s):// and model names)

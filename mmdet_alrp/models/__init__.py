from .dense_heads import *  # noqa: F403
from .losses import *  # noqa: F403
from .roi_heads import *  # noqa: F403
from .task_modules import *  # noqa: F403
from .utils import *  # noqa: F403

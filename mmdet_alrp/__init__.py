"""aLRP Loss for MMDetection 3.x.

Importing the package registers every module of ours in MMDetection's registries (scope
``mmdet``), so configs need only
``custom_imports = dict(imports=['mmdet_alrp'], allow_failed_imports=False)``. The demo's
dataset generator and plots live apart, in :mod:`mmdet_alrp.demo`, which registers nothing and
is imported only by who uses it.
"""

from . import engine, evaluation, models  # noqa: F401
from .version import __version__  # noqa: F401

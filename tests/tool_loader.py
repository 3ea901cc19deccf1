"""Imports a script of tools/ as a module, so that tests call its functions and main()."""

import importlib.util
import os.path as osp
from types import ModuleType

TOOLS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools')


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a fresh module named ``tool_<name>``."""
    spec = importlib.util.spec_from_file_location(f'tool_{name}', osp.join(TOOLS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

"""Imports a script of tools/ as a module, so that tests call its functions and main()."""

import glob
import importlib.util
import os.path as osp
from types import ModuleType

TOOLS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools')


def tool_path(name: str) -> str:
    """The one script ``tools/**/<name>.py`` (tools/ groups its scripts in folders, and a name
    stands once)."""
    found = glob.glob(osp.join(TOOLS, '**', f'{name}.py'), recursive=True)
    if len(found) != 1:
        raise FileNotFoundError(f'tools/**/{name}.py: expected one script, found {found}')
    return found[0]


def load_tool(name: str) -> ModuleType:
    """``tools/**/<name>.py`` as a fresh module named ``tool_<name>``."""
    spec = importlib.util.spec_from_file_location(f'tool_{name}', tool_path(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

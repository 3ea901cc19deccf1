"""The lint gate: `make lint` runs ruff's lint (with import order) and its formatting check,
`make test` runs it before pytest, pre-commit runs the ruff of requirements/constraints.txt, and
ruff.toml's rules catch what they are meant to."""

import os.path as osp
import re
import subprocess
import sys

import pytest

from tests.tool_loader import TOOLS, load_tool

ROOT = osp.dirname(TOOLS)
RUFF = osp.join(osp.dirname(sys.executable), 'ruff')


def make_rule(target):
    """(prerequisites, recipe lines) of a Makefile target."""
    text = open(osp.join(ROOT, 'Makefile')).read()
    match = re.search(rf'^{target}:([^\n]*)\n((?:\t[^\n]*\n)*)', text, re.M)
    return match.group(1).split(), [line.strip() for line in match.group(2).splitlines()]


def test_make_test_lints_before_pytest():
    prerequisites, recipe = make_rule('lint')
    assert prerequisites == ['install']
    assert recipe == ['$(VENV)/bin/ruff check .', '$(VENV)/bin/ruff format --check .']
    prerequisites, recipe = make_rule('test')
    assert prerequisites == ['install', 'lint'] and recipe[0].startswith('$(PY) -m pytest')


def test_pre_commit_runs_the_pinned_ruff():
    text = open(osp.join(ROOT, '.pre-commit-config.yaml')).read()
    (ruff_pin,) = [p for p in load_tool('pins').read_pins() if p.name == 'ruff']
    assert str(ruff_pin) == 'ruff==0.17.5'
    assert re.findall(r'^\s*rev: (\S+)$', text, re.M) == ['v0.17.5']
    assert re.findall(r'^\s*- id: (\S+)$', text, re.M) == ['ruff-check', 'ruff-format']
    assert re.findall(r'^\s*args: (.+)$', text, re.M) == ['[--check]']


def test_ruff_settings():
    text = open(osp.join(ROOT, 'ruff.toml')).read()

    def setting(key):
        (value,) = re.findall(rf'^{key} = (.+?)(?:  #.*)?$', text, re.M)
        return value

    assert setting('line-length') == '100' and setting('quote-style') == "'single'"
    assert {"'F'", "'E'", "'W'", "'I'"} <= set(setting('select').strip('[]').split(', '))
    assert {"'alrp_core'", "'mmdet_alrp'"} <= set(
        setting('known-first-party').strip('[]').split(', ')
    )
    assert {"'.venv'", "'build'", "'work_dirs'", "'data'"} <= set(
        setting('extend-exclude').strip('[]').split(', ')
    )


@pytest.fixture(scope='module')
def ruff():
    if not osp.exists(RUFF):
        pytest.skip(
            'ruff is installed by `make install` (tools step of requirements/constraints.txt)'
        )
    version = subprocess.run([RUFF, '--version'], capture_output=True, text=True).stdout
    assert version.split() == ['ruff', '0.17.5']
    return RUFF


def lint(ruff, tmp_path, source, *command):
    path = tmp_path / 'sample.py'
    path.write_text(source)
    return subprocess.run(
        [ruff, *command, '--config', osp.join(ROOT, 'ruff.toml'), str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


GOOD = """import os

import torch

from mmdet.registry import MODELS
from mmdet_alrp.models import aLRPLoss

from .sibling import name

VALUES = dict(a=os.sep, b=torch.zeros(1), c=MODELS, d=aLRPLoss, e=name, f='single quotes')
"""


def test_ruff_passes_the_code_style(ruff, tmp_path):
    assert lint(ruff, tmp_path, GOOD, 'check').returncode == 0
    assert lint(ruff, tmp_path, GOOD, 'format', '--check').returncode == 0


@pytest.mark.parametrize(
    'source,command,code',
    [
        (GOOD.replace('import os\n\n', '').replace('os.sep', '1') + 'import os\n', 'check', 'E402'),
        (GOOD.replace('from .sibling import name\n', ''), 'check', 'F821'),
        (GOOD.replace('from mmdet.registry', 'from mmengine.registry'), 'check', 'I001'),
        (GOOD + 'x = 1 \n', 'check', 'W291'),
        (GOOD + 'y = """' + 'a' * 100 + '"""\n', 'check', 'E501'),
        (GOOD + 'breakpoint()\n', 'check', 'T100'),
        (GOOD.replace("'single quotes'", '"double quotes"'), 'format', ''),
    ],
)
def test_ruff_catches(ruff, tmp_path, source, command, code):
    run = lint(ruff, tmp_path, source, command, *(['--check'] if command == 'format' else []))
    assert run.returncode == 1 and code in run.stdout, run.stdout + run.stderr

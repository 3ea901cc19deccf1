"""requirements/pins.txt is the one place of the pinned versions: tools/install/install.sh
installs exactly its pins step by step (run here with a stub interpreter that records pip's
command lines), tools/install/check_install.py finds a step to do from them, setup.py's
install_requires are its runtime pins, and tools/install/test_core_oldest_torch.sh installs its
group oldest-torch."""

import os
import os.path as osp
import re
import runpy
import stat
import subprocess
import sys

import pytest
import setuptools

from tests.tool_loader import TOOLS, load_tool

ROOT = osp.dirname(TOOLS)
pins = load_tool('pins')
PINS = pins.read_pins()
INSTALL_STEPS = ('build', 'torch', 'mmengine', 'mmcv', 'mmdet', 'tools')


def pin(name, group):
    (found,) = [p for p in PINS if p.name == name and p.group == group]
    return found


def test_the_file_pins_the_measured_stack():
    assert {p.group for p in PINS} == set(INSTALL_STEPS) | {'oldest-torch'}
    versions = {p.name: p.specifiers for p in PINS if p.group in INSTALL_STEPS}
    assert versions['torch'] == '==2.13.0' and versions['mmengine'] == '==0.10.7'
    assert versions['mmcv'] == '==2.1.0' and versions['mmdet'] == '==3.3.0'
    assert versions['numpy'] == '<2' and versions['setuptools'] == '<70'
    assert versions['ruff'] == '==0.17.5' and versions['openmim'] == '==0.3.9'
    assert pin('torch', 'oldest-torch').specifiers == '==2.0.1'
    assert pin('openmim', 'tools').flags == ('no-deps',)
    assert pin('mmcv', 'mmcv').flags == ('built',)
    assert {p.name for p in PINS if 'any-version' in p.flags} == {'torch', 'triton'}
    assert {p.name for p in PINS if 'held' in p.flags} == {'numpy', 'setuptools'}


@pytest.mark.parametrize(
    'line,message',
    [
        ('numpy<2', 'needs a group'),
        ('numpy<2 runtime', 'needs a group'),
        ('numpy<2 build pinned', r"unknown flags \['pinned'\]"),
        ('numpy~=1.2 build', 'is not a name'),
        ('numpy<2, build', 'is not a name'),
        ('numpy[extra] build', 'is not a name'),
    ],
)
def test_a_bad_line_is_named(line, message):
    with pytest.raises(ValueError, match=f'pins.txt:7: .*{message}'):
        pins.parse_line(line, 'pins.txt:7')


def test_comments_and_a_pin_twice_in_a_group(tmp_path):
    assert pins.parse_line('  # a comment', 'x') is None
    assert pins.parse_line('a>=1.0,<2  g  held  # why', 'x') == pins.Pin(
        'a', '>=1.0,<2', 'g', ('held',)
    )
    path = tmp_path / 'pins.txt'
    path.write_text('Pillow g\nnumpy<2 h\npillow<11 g\n')
    with pytest.raises(ValueError, match=r'pins.txt:3: pillow is pinned twice in g'):
        pins.read_pins(str(path))


@pytest.mark.parametrize(
    'requirement,version,met',
    [
        ('torch==2.13.0', '2.13.0+cpu', True),
        ('torch==2.13.0', '2.13', True),
        ('torch==2.13.0', '2.13.1', False),
        ('numpy<2', '1.26.4', True),
        ('numpy<2', '2.0.0', False),
        ('numpy<2', '2.0.0rc1', False),  # release numbers only: a pre-release of 2.0 is not <2
        ('setuptools<70', '69.5.1', True),
        ('mmdet>=3.0,<3.4', '3.3.0', True),
        ('mmdet>=3.0,<3.4', '3.4.0', False),
        ('mmdet>=3.0,<3.4', '2.28.2', False),
        ('a!=1.0', '1.0.0', False),
        ('a<=1.0', '1.0', True),
        ('a>1.0', '1.0.1', True),
        ('pytest', '9.2.0', True),
    ],
)
def test_satisfied(requirement, version, met):
    p = pins.parse_line(f'{requirement} g', 'x')
    assert pins.satisfied(p, {p.name.lower(): version}) is met


def test_satisfied_by_names_as_pip_compares_them_and_any_version():
    assert pins.satisfied(pin('Pillow', 'mmcv'), {'pillow': '13.0.0'})
    assert pins.satisfied(pin('model-index', 'tools'), {pins.normalize('model_index'): '0.1'})
    assert not pins.satisfied(pin('model-index', 'tools'), {'pillow': '13.0.0'})
    assert pins.satisfied(pin('triton', 'tools'), {'triton': '3.1.0'})  # a CUDA torch's triton
    assert pins.satisfied(pin('torch', 'torch'), {'torch': '2.1.2+cu118'})
    assert not pins.satisfied(pin('torch', 'oldest-torch'), {'torch': '2.1.2+cu118'})


def test_select():
    assert pins.select(PINS, 'torch', held=True) == ['torch==2.13.0', 'setuptools<70', 'numpy<2']
    assert pins.select(PINS, 'build', held=True) == ['setuptools<70', 'wheel', 'ninja', 'numpy<2']
    assert pins.select(PINS, 'mmcv', with_flags=['built']) == ['mmcv==2.1.0']
    assert 'mmcv==2.1.0' not in pins.select(PINS, 'mmcv', without_flags=['built'])
    missing = pins.select(
        PINS, 'tools', with_flags=['any-version'], missing_from={'triton': '3.1.0'}
    )
    assert missing == []
    assert pins.select(PINS, 'tools', with_flags=['any-version'], missing_from={}) == [
        'triton==3.9.0'
    ]
    with pytest.raises(ValueError, match="no pin is in the group 'tool'"):
        pins.select(PINS, 'tool')


def meeting_versions():
    """Installed versions that meet every pin of the install steps."""
    versions = {}
    for p in PINS:
        if p.group in INSTALL_STEPS:
            wanted = re.match(r'==([0-9.]+)', p.specifiers)
            versions[pins.normalize(p.name)] = wanted.group(1) if wanted else '1.0'
    return versions


@pytest.fixture
def check_install(monkeypatch):
    # check_install.py imports pins from its own folder
    monkeypatch.syspath_prepend(osp.join(TOOLS, 'install'))
    module = load_tool('check_install')
    monkeypatch.setitem(module.OWN_CHECKS, 'mmcv', lambda: True)
    monkeypatch.setitem(module.OWN_CHECKS, 'self', lambda: True)
    yield module
    sys.modules.pop('pins', None)


@pytest.mark.parametrize(
    'change,steps',
    [
        ({}, []),
        ({'numpy': '2.0.0'}, ['build']),
        ({'wheel': None}, ['build']),
        ({'torch': '2.1.2+cu118'}, []),  # a torch of the user's own is kept
        ({'torch': None}, ['torch']),
        ({'mmengine': '0.10.6'}, ['mmengine']),
        ({'opencv-python': '4.11.0'}, ['mmcv']),
        ({'mmdet': '3.2.0', 'pycocotools': None}, ['mmdet']),
        ({'ruff': '0.17.4', 'triton': '3.1.0'}, ['tools']),
        ({'triton': None, 'setuptools': '70.0.0'}, ['build', 'tools']),
    ],
)
def test_check_install_finds_the_steps_from_the_pins(check_install, change, steps):
    versions = meeting_versions()
    for name, version in change.items():
        if version is None:
            del versions[name]
        else:
            versions[name] = version
    assert check_install.missing_steps(versions) == steps


def test_check_install_adds_the_steps_own_checks(check_install, monkeypatch):
    monkeypatch.setitem(check_install.OWN_CHECKS, 'mmcv', lambda: False)  # mmcv without its ops
    assert check_install.missing_steps(meeting_versions()) == ['mmcv']
    monkeypatch.setitem(check_install.OWN_CHECKS, 'self', lambda: False)
    assert check_install.missing_steps(meeting_versions()) == ['mmcv', 'self']


def test_setup_requires_the_runtime_pins(monkeypatch):
    arguments = {}
    monkeypatch.setattr(setuptools, 'setup', lambda **kwargs: arguments.update(kwargs))
    runpy.run_path(osp.join(ROOT, 'setup.py'), run_name='__main__')
    assert arguments['install_requires'] == [
        'setuptools<70',
        'numpy<2',
        'mmengine==0.10.7',
        'mmdet==3.3.0',
    ]


def stub_venv(tmp_path):
    """A venv whose python records `-m pip` and `-m pytest` command lines (with the mmcv build
    variables) in pip.log, answers the import checks (-c, stdin) with success and runs scripts
    on this interpreter without site-packages: to tools/install/pins.py and
    tools/install/check_install.py nothing is installed."""
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    python = venv / 'bin' / 'python'
    python.write_text(
        '#!/bin/sh\n'
        'if [ "$1" = -m ]; then\n'
        f'    echo "MMCV_WITH_OPS=${{MMCV_WITH_OPS:-}} $*" >> "{tmp_path}/pip.log"; exit 0\n'
        'fi\n'
        'if [ "$1" = -c ] || [ "$1" = - ]; then exit 0; fi\n'
        f'exec "{sys.executable}" -S "$@"\n'
    )
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    env = {key: value for key, value in os.environ.items() if not key.startswith('PYTHON')}
    env['CXX'] = 'true'  # install.sh asks for a C++ compiler before the mmcv build
    return str(venv), env, tmp_path / 'pip.log'


def pip_commands(log):
    """(MMCV_WITH_OPS, pip options, requirements) of every logged pip install."""
    commands = []
    for line in log.read_text().splitlines():
        words = line.split()
        assert words[1:4] == ['-m', 'pip', 'install'], line
        options = [w for w in words[4:] if w.startswith('-') or w == '.']
        requirements = [w for w in words[4:] if w not in options]
        commands.append((words[0], options, requirements))
    return commands


def test_install_sh_installs_exactly_the_pins(tmp_path):
    venv, env, log = stub_venv(tmp_path)
    run = subprocess.run(
        ['bash', osp.join(TOOLS, 'install', 'install.sh')],
        env=dict(env, VENV=venv),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'installing into' in run.stdout
    assert 'build torch mmengine mmcv mmdet tools self' in run.stdout
    commands = pip_commands(log)
    quiet = ['--disable-pip-version-check', '-q']
    held = ['setuptools<70', 'numpy<2']
    by_group = {group: [p.requirement for p in PINS if p.group == group] for group in INSTALL_STEPS}
    mmcv_runtime = [r for r in by_group['mmcv'] if r != 'mmcv==2.1.0']
    assert commands == [
        ('MMCV_WITH_OPS=', quiet, by_group['build']),
        ('MMCV_WITH_OPS=', quiet, by_group['torch']),  # torch wants setuptools>=77
        ('MMCV_WITH_OPS=', quiet, by_group['mmengine'] + held),
        ('MMCV_WITH_OPS=', quiet, mmcv_runtime + held),
        (
            'MMCV_WITH_OPS=1',
            ['--disable-pip-version-check', '--no-build-isolation'],
            ['mmcv==2.1.0'],
        ),
        ('MMCV_WITH_OPS=', quiet, by_group['mmdet'] + held),
        (
            'MMCV_WITH_OPS=',
            quiet,
            [r for r in by_group['tools'] if r not in ('openmim==0.3.9', 'triton==3.9.0')] + held,
        ),
        ('MMCV_WITH_OPS=', quiet + ['--no-deps'], ['openmim==0.3.9']),
        ('MMCV_WITH_OPS=', quiet, ['triton==3.9.0']),
        ('MMCV_WITH_OPS=', quiet + ['--no-build-isolation', '--no-deps', '-e', '.'], []),
    ]
    installed = {r for _, _, requirements in commands for r in requirements}
    assert installed == {p.requirement for p in PINS if p.group in INSTALL_STEPS}


def test_install_sh_names_no_version_of_its_own():
    text = open(osp.join(TOOLS, 'install', 'install.sh')).read()
    assert re.findall(r'[\w-]+(?:==|<|>=)\d', text) == []


def test_oldest_torch_script_installs_its_group(tmp_path):
    venv, env, log = stub_venv(tmp_path)
    run = subprocess.run(
        ['bash', osp.join(TOOLS, 'install', 'test_core_oldest_torch.sh'), '-x'],
        env=dict(env, OLD_TORCH_VENV=venv),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    pip_line, pytest_line = log.read_text().splitlines()
    assert pip_line.split()[1:] == [
        '-m',
        'pip',
        'install',
        '--disable-pip-version-check',
        '-q',
        'torch==2.0.1',
        'numpy<2',
        'pytest',
        'hypothesis',
    ]
    assert pytest_line.split()[1:] == [
        '-m',
        'pytest',
        'tests/test_core',
        '-p',
        'no:cacheprovider',
        '-x',
    ]

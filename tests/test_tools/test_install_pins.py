"""requirements/: runtime.txt holds the ranges the code supports (setup.py's install_requires),
constraints.txt the exact, measured set of make install, as a pip constraints file whose
comments name each package's install step. tools/install/install.sh installs exactly that set
step by step with the constraints on every pip install but torch's (run here with a stub
interpreter that records pip's command lines), tools/install/check_install.py finds a step to do
from it (versions compared by ``packaging``, as pip compares them), and
tools/install/test_core_oldest_torch.sh installs requirements/oldest_torch.txt."""

import os
import os.path as osp
import re
import runpy
import stat
import subprocess
import sys

import packaging
import pytest
import setuptools
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from tests.tool_loader import TOOLS, load_tool

ROOT = osp.dirname(TOOLS)
CONSTRAINTS = osp.join(ROOT, 'requirements', 'constraints.txt')
pins = load_tool('pins')
PINS = pins.read_pins()
INSTALL_STEPS = ('build', 'torch', 'mmengine', 'mmcv', 'mmdet', 'tools')


def runtime_requirements():
    """requirements/runtime.txt as packaging Requirements, by canonical name."""
    with open(osp.join(ROOT, 'requirements', 'runtime.txt')) as f:
        lines = [line.split('#', 1)[0].strip() for line in f]
    requirements = [Requirement(line) for line in lines if line]
    return {pins.canonicalize_name(r.name): r for r in requirements}


def pin(name):
    (found,) = [p for p in PINS if p.name == name]
    return found


def test_constraints_are_the_exact_measured_set():
    assert [p.step for p in PINS] == sorted((p.step for p in PINS), key=INSTALL_STEPS.index)
    assert all(len(p.requirement.specifier) == 1 for p in PINS)
    assert all(next(iter(p.requirement.specifier)).operator == '==' for p in PINS)
    versions = {p.name: str(p.requirement.specifier) for p in PINS}
    assert versions['torch'] == '==2.13.0' and versions['mmengine'] == '==0.10.7'
    assert versions['mmcv'] == '==2.1.0' and versions['mmdet'] == '==3.3.0'
    assert versions['numpy'] == '==1.26.4' and versions['setuptools'] == '==69.5.1'
    assert versions['ruff'] == '==0.17.5' and versions['openmim'] == '==0.3.9'
    assert pin('openmim').flags == ('no-deps',) and pin('mmcv').flags == ('built',)
    assert {p.name for p in PINS if 'any-version' in p.flags} == {'torch', 'triton'}
    assert {p.name for p in PINS if 'held' in p.flags} == {'numpy', 'setuptools'}


def test_runtime_ranges_hold_the_verified_ends_and_the_measured_set():
    runtime = runtime_requirements()
    assert set(runtime) == {'mmengine', 'mmcv', 'mmdet', 'numpy', 'setuptools'}  # torch: the user's
    ends = {
        'mmdet': (['3.2.0', '3.3.0'], ['3.1.0', '3.4.0']),
        'mmengine': (['0.10.0', '0.10.7'], ['0.9.1', '0.11.0']),
        'mmcv': (['2.1.0'], ['2.0.1', '2.2.0']),
        'setuptools': (['69.5.1', '81.0.0'], ['82.0.0']),  # 82 dropped pkg_resources
        'numpy': (['1.26.4'], ['2.0.0']),
    }
    for name, (inside, outside) in ends.items():
        specifier = runtime[name].specifier
        assert all(specifier.contains(v, prereleases=True) for v in inside), name
        assert not any(specifier.contains(v, prereleases=True) for v in outside), name
    for p in PINS:
        if p.key in runtime:
            (version,) = [s.version for s in p.requirement.specifier]
            assert runtime[p.key].specifier.contains(version), p


@pytest.mark.parametrize(
    'line,message',
    [
        ('numpy==1.26.4', 'needs its step'),
        ('numpy==1.26.4  # held', 'needs its step'),
        ('numpy==1.26.4  # build pinned', r"unknown flags \['pinned'\]"),
        ('numpy=1.2  # build', 'is not a requirement'),
        ('numpy[extra]==1.26.4  # build', 'a name and versions only'),
    ],
)
def test_a_bad_line_is_named(line, message):
    with pytest.raises(ValueError, match=f'constraints.txt:7: .*{message}'):
        pins.parse_line(line, 'constraints.txt:7')


def test_comments_and_a_name_twice(tmp_path):
    assert pins.parse_line('  # a comment', 'x') is None
    parsed = pins.parse_line('a>=1.0,<2  # g  held', 'x')
    assert (parsed.name, parsed.step, parsed.flags) == ('a', 'g', ('held',))
    path = tmp_path / 'constraints.txt'
    path.write_text('Pillow==13.0  # g\nnumpy==1.26.4  # h\npillow==12.0  # h\n')
    with pytest.raises(ValueError, match=r'constraints.txt:3: pillow stands twice'):
        pins.read_pins(str(path))


@pytest.mark.parametrize(
    'requirement,version,met',
    [
        ('torch==2.13.0', '2.13.0+cpu', True),  # a local build of the version
        ('torch==2.13.0', '2.13', True),
        ('torch==2.13.0', '2.13.1', False),
        ('numpy<2', '1.26.4', True),
        ('numpy<2', '2.0.0', False),
        ('numpy<2', '2.0.0rc1', False),  # a pre-release of 2.0 is not <2
        ('numpy<2', '1.27.0rc1', True),  # one of 1.27 is
        ('mmdet>=3.2,<3.4', '3.3.0', True),
        ('mmdet>=3.2,<3.4', '3.4.0', False),
        ('mmdet>=3.2,<3.4', '2.28.2', False),
        ('a!=1.0', '1.0.0', False),
        ('a<=1.0', '1.0', True),
        ('a>1.0', '1.0.1', True),
        ('a>1.0', '1.0.post1', False),  # PEP 440: >V leaves out V's post-releases
        ('a==1.0', 'not-a-version', False),
        ('pytest', '9.2.0', True),
    ],
)
def test_satisfied_as_pip_compares(requirement, version, met):
    p = pins.parse_line(f'{requirement}  # g', 'x')
    assert pins.satisfied(p, {p.key: version}) is met


def test_satisfied_by_names_as_pip_compares_them_and_any_version():
    assert pins.satisfied(pin('Pillow'), {'pillow': '13.0.0'})
    assert pins.satisfied(pin('model-index'), {pins.canonicalize_name('model_index'): '0.1.11'})
    assert not pins.satisfied(pin('model-index'), {'pillow': '13.0.0'})
    assert pins.satisfied(pin('triton'), {'triton': '3.1.0'})  # a CUDA torch's triton
    assert pins.satisfied(pin('torch'), {'torch': '2.1.2+cu118'})


def test_select():
    assert pins.select(PINS, 'torch', held=True) == [
        'torch==2.13.0',
        'setuptools==69.5.1',
        'numpy==1.26.4',
    ]
    assert pins.select(PINS, 'build', held=True) == [
        'setuptools==69.5.1',
        'wheel==0.48.0',
        'ninja==1.13.2',
        'numpy==1.26.4',
        'packaging==26.4',
    ]
    assert pins.select(PINS, 'mmcv', with_flags=['built']) == ['mmcv==2.1.0']
    assert 'mmcv==2.1.0' not in pins.select(PINS, 'mmcv', without_flags=['built'])
    triton = dict(with_flags=['any-version'])
    assert pins.select(PINS, 'tools', missing_from={'triton': '3.1.0'}, **triton) == []
    assert pins.select(PINS, 'tools', missing_from={}, **triton) == ['triton==3.9.0']
    with pytest.raises(ValueError, match="no pin is in the step 'tool'"):
        pins.select(PINS, 'tool')


def meeting_versions():
    """Installed versions that meet every pin."""
    return {p.key: next(iter(p.requirement.specifier)).version for p in PINS}


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
        ({'opencv-python': '4.11.0.86'}, ['mmcv']),
        ({'mmdet': '3.2.0', 'pycocotools': None}, ['mmdet']),
        ({'ruff': '0.17.4', 'triton': '3.1.0'}, ['tools']),
        ({'triton': None, 'setuptools': '80.9.0'}, ['build', 'tools']),
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


def test_setup_requires_the_ranges_and_the_one_version(monkeypatch):
    arguments = {}
    monkeypatch.setattr(setuptools, 'setup', lambda **kwargs: arguments.update(kwargs))
    runpy.run_path(osp.join(ROOT, 'setup.py'), run_name='__main__')
    required = [Requirement(r) for r in arguments['install_requires']]
    assert required == list(runtime_requirements().values())
    from mmdet_alrp import __version__

    assert arguments['version'] == __version__ == str(Version(__version__))
    with open(osp.join(ROOT, 'CITATION.cff')) as f:
        assert yaml.safe_load(f)['version'] == __version__


def stub_venv(tmp_path):
    """A venv whose python records `-m pip` and `-m pytest` command lines (with the mmcv build
    variables) in pip.log, answers the import checks (-c, stdin) with success and runs scripts
    on this interpreter without site-packages, packaging alone on its path: to
    tools/install/pins.py and tools/install/check_install.py nothing is installed."""
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    lib = tmp_path / 'lib'
    lib.mkdir()
    (lib / 'packaging').symlink_to(osp.dirname(packaging.__file__))
    python = venv / 'bin' / 'python'
    python.write_text(
        '#!/bin/sh\n'
        'if [ "$1" = -m ]; then\n'
        f'    echo "MMCV_WITH_OPS=${{MMCV_WITH_OPS:-}} $*" >> "{tmp_path}/pip.log"; exit 0\n'
        'fi\n'
        'if [ "$1" = -c ] || [ "$1" = - ]; then exit 0; fi\n'
        f'PYTHONPATH="{lib}" exec "{sys.executable}" -S "$@"\n'
    )
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    env = {key: value for key, value in os.environ.items() if not key.startswith('PYTHON')}
    env['CXX'] = 'true'  # install.sh asks for a C++ compiler before the mmcv build
    return str(venv), env, tmp_path / 'pip.log'


def pip_commands(log):
    """(MMCV_WITH_OPS, the constraints file or None, pip options, requirements) of every logged
    pip install."""
    commands = []
    for line in log.read_text().splitlines():
        words = line.split()
        assert words[1:4] == ['-m', 'pip', 'install'], line
        args = words[4:]
        constraints = None
        if '-c' in args:
            at = args.index('-c')
            constraints = args[at + 1]
            del args[at : at + 2]
        options = [w for w in args if w.startswith('-') or w == '.']
        requirements = [w for w in args if w not in options]
        commands.append((words[0], constraints, options, requirements))
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
    quiet = ['--disable-pip-version-check', '-q']
    held = ['setuptools==69.5.1', 'numpy==1.26.4']
    by_step = {step: [str(p) for p in PINS if p.step == step] for step in INSTALL_STEPS}
    mmcv_runtime = [r for r in by_step['mmcv'] if r != 'mmcv==2.1.0']
    tools = [r for r in by_step['tools'] if r not in ('openmim==0.3.9', 'triton==3.9.0')]
    c = CONSTRAINTS
    assert pip_commands(log) == [
        ('MMCV_WITH_OPS=', c, quiet, by_step['build']),
        ('MMCV_WITH_OPS=', None, quiet, by_step['torch']),  # torch wants setuptools>=77
        ('MMCV_WITH_OPS=', c, quiet, by_step['mmengine'] + held),
        ('MMCV_WITH_OPS=', c, quiet, mmcv_runtime + held),
        (
            'MMCV_WITH_OPS=1',
            c,
            ['--disable-pip-version-check', '--no-build-isolation'],
            ['mmcv==2.1.0'],
        ),
        ('MMCV_WITH_OPS=', c, quiet, by_step['mmdet'] + held),
        ('MMCV_WITH_OPS=', c, quiet, tools + held),
        ('MMCV_WITH_OPS=', c, quiet + ['--no-deps'], ['openmim==0.3.9']),
        ('MMCV_WITH_OPS=', c, quiet, ['triton==3.9.0']),
        ('MMCV_WITH_OPS=', c, quiet + ['--no-build-isolation', '--no-deps', '-e', '.'], []),
    ]
    installed = {r for *_, requirements in pip_commands(log) for r in requirements}
    assert installed == {str(p) for p in PINS}


def test_install_sh_names_no_version_of_its_own():
    with open(osp.join(TOOLS, 'install', 'install.sh')) as f:
        text = f.read()
    assert re.findall(r'[\w-]+(?:==|<|>=)\d', text) == []


def test_oldest_torch_script_installs_its_file(tmp_path):
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
        '-r',
        'requirements/oldest_torch.txt',
    ]
    assert pytest_line.split()[2:] == ['pytest', 'tests/test_core', '-p', 'no:cacheprovider', '-x']
    with open(osp.join(ROOT, 'requirements', 'oldest_torch.txt')) as f:
        text = f.read()
    assert 'torch==2.0.1' in text.split()

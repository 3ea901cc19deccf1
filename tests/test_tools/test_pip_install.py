"""`pip install --no-build-isolation .` into an environment that already has torch, mmcv, mmdet
and mmengine (a new venv that sees this interpreter's packages, pip offline) installs mmdet_alrp
alone: its install_requires are met as they stand, it builds the ranking core's C++ op against
that torch, and every installed version stays as it was. It compiles the op: a minute or two."""

import importlib.metadata
import os
import os.path as osp
import shutil
import site
import subprocess
import sys
import sysconfig

from mmdet_alrp import __version__

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KEPT = ('torch', 'mmcv', 'mmdet', 'mmengine', 'numpy', 'setuptools')
#: What `pip install .` reads of the checkout.
SOURCES = ('setup.py', 'setup.cfg', 'requirements', 'alrp_core', 'mmdet_alrp')


def run(command, **kwargs):
    return subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)


def versions(python):
    """The versions of KEPT as ``python`` sees them."""
    code = 'import importlib.metadata as m, sys; print(*(m.version(n) for n in sys.argv[1:]))'
    return dict(zip(KEPT, run([python, '-c', code, *KEPT], cwd='/').stdout.split()))


def venv_over_this_environment(folder):
    """A new venv with an empty site-packages of its own and, after it on the path (a .pth
    file), this interpreter's: torch, mmcv, mmdet and mmengine are installed but not in it.
    Its python and its own site-packages."""
    made = run([sys.executable, '-m', 'venv', '--without-pip', str(folder)])
    assert made.returncode == 0, made.stderr
    python = str(folder / 'bin' / 'python')
    code = 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
    own = run([python, '-c', code]).stdout.strip()
    ours = dict.fromkeys(site.getsitepackages() + [sysconfig.get_paths()['purelib']])
    with open(osp.join(own, 'base_environment.pth'), 'w') as f:
        f.write(''.join(f'{path}\n' for path in ours))
    return python, own


def copy_sources(folder):
    folder.mkdir()
    for name in SOURCES:
        path = osp.join(ROOT, name)
        if osp.isdir(path):
            shutil.copytree(
                path, folder / name, ignore=shutil.ignore_patterns('__pycache__', '*.so')
            )
        else:
            shutil.copy(path, folder / name)


def test_pip_install_keeps_the_environment_and_builds_the_op(tmp_path):
    python, own_site = venv_over_this_environment(tmp_path / 'venv')
    copy_sources(tmp_path / 'source')
    before = versions(python)
    assert before == {name: importlib.metadata.version(name) for name in KEPT}
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PIP_CONSTRAINT')}
    command = [python, '-m', 'pip', 'install', '--disable-pip-version-check', '--no-index']
    install = run(command + ['--no-build-isolation', str(tmp_path / 'source')], env=env)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    (installed,) = [
        line for line in install.stdout.splitlines() if line.startswith('Successfully installed')
    ]
    assert installed.split()[2:] == [f'mmdet_alrp-{__version__}']
    assert versions(python) == before
    where = (
        'import alrp_core._ranking_cpu as op, mmdet_alrp; print(op.__file__, mmdet_alrp.__file__)'
    )
    imported = run([python, '-c', where], cwd='/', env=env)
    assert imported.returncode == 0, imported.stderr
    assert all(path.startswith(own_site) for path in imported.stdout.split())

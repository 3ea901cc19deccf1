import os.path as osp
import re
from typing import List

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def cpp_op():
    """The ranking core's C++ CPU op, built against the torch of the build environment (pip
    install --no-build-isolation, as tools/install/install.sh runs it); without torch there it
    is left out and the core runs its torch-op path."""
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        return {}
    # -fopenmp: at::parallel_for is inline and runs serially in code built without OpenMP.
    op = CppExtension(
        'alrp_core._ranking_cpu',
        ['alrp_core/backends/ranking_cpu.cpp'],
        extra_compile_args=['-O3', '-fopenmp'],
        extra_link_args=['-fopenmp'],
    )
    return dict(ext_modules=[op], cmdclass={'build_ext': BuildExtension})


def requirements(name: str) -> List[str]:
    """The requirement lines of requirements/NAME, comments and blank lines left out."""
    with open(osp.join(HERE, 'requirements', name)) as f:
        lines = [line.split('#', 1)[0].strip() for line in f]
    return [line for line in lines if line]


def version() -> str:
    """``__version__`` of mmdet_alrp/version.py, read without importing the package (which
    imports mmdet)."""
    with open(osp.join(HERE, 'mmdet_alrp', 'version.py')) as f:
        return re.search(r"^__version__ = '([^']+)'$", f.read(), re.M).group(1)


setup(
    name='mmdet_alrp',
    version=version(),
    description='aLRP Loss and other ranking-based losses for MMDetection 3.x',
    license='Apache-2.0',
    packages=find_packages(include=['mmdet_alrp', 'mmdet_alrp.*', 'alrp_core', 'alrp_core.*']),
    python_requires='>=3.8',
    install_requires=requirements('runtime.txt'),
    **cpp_op(),
)

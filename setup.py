import importlib.util
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def cpp_op():
    """The ranking core's C++ CPU op, built against the torch of the build environment
    (tools/install/install.sh runs pip with --no-build-isolation); without torch there it is left
    out and the core runs its torch-op path."""
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


def runtime_requirements():
    """The pins of requirements/pins.txt marked `runtime`, read by tools/install/pins.py."""
    spec = importlib.util.spec_from_file_location(
        'pins', osp.join(HERE, 'tools', 'install', 'pins.py')
    )
    pins = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pins)
    return [pin.requirement for pin in pins.read_pins() if 'runtime' in pin.flags]


setup(
    name='mmdet_alrp',
    version='0.1.0',
    description='aLRP Loss (Oksuz et al., NeurIPS 2020) for MMDetection 3.x',
    packages=find_packages(include=['mmdet_alrp', 'mmdet_alrp.*', 'alrp_core', 'alrp_core.*']),
    python_requires='>=3.8',
    install_requires=runtime_requirements(),
    **cpp_op(),
)

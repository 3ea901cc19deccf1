"""Print what tools/install.sh still has to install, as words among: build torch mmengine mmcv
mmdet tools self. Run it from outside the checkout, with ALRP_ROOT naming the checkout, so that a
package it finds is an installed one and not the source folder."""
import glob
import importlib
import importlib.util
import os


def version(name):
    try:
        return importlib.import_module(name).__version__
    except Exception:
        return None


def major(name):
    v = version(name)
    return int(v.split('.')[0]) if v else None


def mmcv_with_ops():
    try:
        import mmcv
        from mmcv.ops import ModulatedDeformConv2d, nms, roi_align  # noqa: F401
    except Exception:
        return False
    return mmcv.__version__ == '2.1.0'


def ours_installed():
    """Both packages of the checkout (mmdet_alrp and its torch-only core alrp_core), editable."""
    for package in ('mmdet_alrp', 'alrp_core'):
        spec = importlib.util.find_spec(package)
        if spec is None or not os.path.samefile(
                os.path.dirname(spec.origin), os.path.join(os.environ['ALRP_ROOT'], package)):
            return False
    return True


def cpp_op_built():
    """The ranking core's C++ op, built by `pip install -e .` against the installed torch."""
    name = 'alrp_core._ranking_cpu'
    folder = os.path.join(os.environ['ALRP_ROOT'], *name.split('.')[:-1])
    try:
        import torch  # noqa: F401  (the op links against it)
        path, = glob.glob(os.path.join(folder, '_ranking_cpu*.so'))
        importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, path))
    except Exception:
        return False
    return True


missing = {
    'build': not ((major('setuptools') or 99) < 70 and (major('numpy') or 99) < 2
                  and version('wheel') is not None),
    'torch': version('torch') is None,
    'mmengine': version('mmengine') != '0.10.7',
    'mmcv': not mmcv_with_ops(),
    'mmdet': version('mmdet') != '3.3.0' or importlib.util.find_spec('pycocotools') is None,
    'tools': any(importlib.util.find_spec(m) is None
                 for m in ('pytest', 'hypothesis', 'matplotlib', 'mim', 'modelindex',
                           'pandas', 'tabulate', 'triton')),
    'self': not (ours_installed() and cpp_op_built()),
}
print(' '.join(name for name, needed in missing.items() if needed))

"""Print what tools/install/install.sh still has to install, as words among: build torch mmengine
mmcv mmdet tools self. A step is to do when a pin of its group in requirements/pins.txt is not met
(pins.py), or, for mmcv and self, when their own check fails. Run it from outside the
checkout, with ALRP_ROOT naming the checkout, so that a package it finds is an installed one and
not the source folder."""

import glob
import importlib.util
import os
from typing import Callable, Dict, List

from pins import installed_versions, read_pins, satisfied

STEPS = ('build', 'torch', 'mmengine', 'mmcv', 'mmdet', 'tools', 'self')


def mmcv_with_ops() -> bool:
    """mmcv imports with its compiled ops (a build without MMCV_WITH_OPS has none)."""
    try:
        from mmcv.ops import ModulatedDeformConv2d, nms, roi_align  # noqa: F401
    except Exception:
        return False
    return True


def ours_installed() -> bool:
    """Both packages of the checkout (mmdet_alrp and its torch-only core alrp_core), editable."""
    for package in ('mmdet_alrp', 'alrp_core'):
        spec = importlib.util.find_spec(package)
        if spec is None or not os.path.samefile(
            os.path.dirname(spec.origin), os.path.join(os.environ['ALRP_ROOT'], package)
        ):
            return False
    return True


def cpp_op_built() -> bool:
    """The ranking core's C++ op, built by `pip install -e .` against the installed torch."""
    name = 'alrp_core._ranking_cpu'
    folder = os.path.join(os.environ['ALRP_ROOT'], *name.split('.')[:-1])
    try:
        import torch  # noqa: F401  (the op links against it)

        (path,) = glob.glob(os.path.join(folder, '_ranking_cpu*.so'))
        importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, path))
    except Exception:
        return False
    return True


#: The checks of a step beyond its pins.
OWN_CHECKS: Dict[str, Callable[[], bool]] = {
    'mmcv': mmcv_with_ops,
    'self': lambda: ours_installed() and cpp_op_built(),
}


def missing_steps(versions: Dict[str, str]) -> List[str]:
    """The steps, in install order, that ``versions`` (as :func:`pins.installed_versions`) or
    the steps' own checks leave to do."""
    unmet = {pin.group for pin in read_pins() if not satisfied(pin, versions)}
    return [
        step for step in STEPS if step in unmet or (step in OWN_CHECKS and not OWN_CHECKS[step]())
    ]


if __name__ == '__main__':
    print(' '.join(missing_steps(installed_versions())))

#!/usr/bin/env bash
# The torch-only package alrp_core (the ranking core, its kernel modules and the two losses)
# on the oldest supported torch (2.0.1: the group oldest-torch of requirements/pins.txt), in its
# own venv without mmdet/mmcv/mmengine: the core is imported on its own and tests/test_core runs
# its torch-op paths and the losses (the tests of the C++ op and Triton skip there).
#
# PyPI's torch 2.0.1 is a CUDA 11.7 build (with its nvidia-* wheels, ~2.5 GB to download the first
# time); it runs on a CPU. Environment: OLD_TORCH_VENV (default .venv-torch20), PYTHON (default
# python3.11, else python3).
set -euo pipefail

cd "$(dirname "$0")/../.."
VENV=${OLD_TORCH_VENV:-.venv-torch20}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
missing=$("$VENV/bin/python" tools/install/pins.py oldest-torch --missing)
if [ -n "$missing" ]; then
    printf '==> installing into %s: %s (a large download the first time)\n' "$VENV" "$(echo $missing)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q $missing
fi
PYTHONPATH="$(pwd)" "$VENV/bin/python" -m pytest \
    tests/test_core -p no:cacheprovider "$@"

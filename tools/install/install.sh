#!/usr/bin/env bash
# Install the pinned, measured stack of mmdet_alrp into ./.venv (idempotent).
#
#   The versions are those of requirements/pins.txt, step by step (read through tools/install/pins.py):
#   build tools (a setuptools that still has pkg_resources, through which mmengine resolves
#   `mmdet::` config paths; numpy 1), torch (kept if the venv already has a torch, e.g. a CUDA
#   build of the user's own), mmengine, mmcv built from source with its C++ ops (CUDA ops when
#   torch has CUDA and nvcc is present), mmdet and pycocotools, the test, lint and plot tools
#   (triton where torch has none), and `pip install -e .` of ours, which builds the ranking
#   core's C++ CPU op.
#
# Environment: VENV (default .venv), PYTHON (default python3.11, else python3),
#   ALRP_SYSTEM_SITE=1 creates the venv with --system-site-packages so that a torch installed
#   outside it (a CUDA build, say) is used instead of installing one.
set -euo pipefail

cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$(pwd)/$VENV" ;; esac
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}

step() { printf '\n==> %s\n' "$*"; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

py() { "$VENV/bin/python" "$@"; }
pip_install() { py -m pip install --disable-pip-version-check -q "$@"; }
has() { py -c "$1" >/dev/null 2>&1; }
# reqs GROUP [OPTIONS]: REQS=(the requirements of GROUP in requirements/pins.txt), as printed by
# tools/install/pins.py (options: --with / --without FLAG, --held, --missing).
reqs() {
    local out
    out=$(py "$ROOT/tools/install/pins.py" "$@") || die "tools/install/pins.py $* failed (see requirements/pins.txt)"
    REQS=($out)
}

if [ ! -x "$VENV/bin/python" ]; then
    step "creating $VENV with $PYTHON"
    [ -n "$PYTHON" ] || die "no python3 found"
    opts=()
    [ "${ALRP_SYSTEM_SITE:-0}" = 1 ] && opts+=(--system-site-packages)
    "$PYTHON" -m venv "${opts[@]}" "$VENV" || die "could not create $VENV (is the venv module installed?)"
fi

ROOT=$(pwd)
# One interpreter start tells what is missing, so that a second run takes seconds.
missing=$(cd / && ALRP_ROOT="$ROOT" "$VENV/bin/python" "$ROOT/tools/install/check_install.py" 2>/dev/null \
          || echo "build torch mmengine mmcv mmdet tools self")
need() { [[ " $missing " == *" $1 "* ]]; }

if [ -z "$missing" ]; then
    echo "mmdet_alrp: everything is installed in $VENV"
    exit 0
fi
echo "mmdet_alrp: installing into $VENV: $missing"

if need build; then
    reqs build --held
    step "build tools: ${REQS[*]}"
    pip_install "${REQS[@]}" || die "pip could not install the build tools"
fi

if need torch; then
    # Without the held pins: torch 2.13 itself requires a newer setuptools than the held one,
    # which this step installs; the next steps (held pins) put the held one back for mmengine.
    reqs torch
    step "${REQS[*]}"
    pip_install "${REQS[@]}" || die "pip could not install ${REQS[*]}"
else
    step "torch: keeping $(py -c 'import torch; print(torch.__version__)')"
fi

if need mmengine; then
    reqs mmengine --held
    step "${REQS[*]}"
    pip_install "${REQS[@]}" || die "pip could not install mmengine"
fi

if need mmcv; then
    with_cuda=0
    if py -c 'import torch, sys; sys.exit(torch.version.cuda is None)' && command -v nvcc >/dev/null 2>&1; then
        with_cuda=1
    fi
    command -v "${CXX:-g++}" >/dev/null 2>&1 || die "mmcv's C++ ops need a C++ compiler (g++ not found)"
    reqs mmcv --with built
    mmcv=("${REQS[@]}")
    step "${mmcv[*]} from source with its C++ ops (CUDA ops: $with_cuda); about 25 minutes on a new 2-core machine the first time, pip caches the wheel"
    reqs mmcv --without built --held
    pip_install "${REQS[@]}" || die "pip could not install mmcv's run-time requirements"
    MMCV_WITH_OPS=1 FORCE_CUDA=$with_cuda MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        py -m pip install --disable-pip-version-check --no-build-isolation "${mmcv[@]}" \
        || die "building ${mmcv[*]} failed (see the compiler output above)"
    has 'from mmcv.ops import nms' \
        || die "mmcv installed without its C++ ops (from mmcv.ops import nms fails): was torch visible to the build?"
fi

if need mmdet; then
    reqs mmdet --held
    step "${REQS[*]}"
    pip_install "${REQS[@]}" || die "pip could not install mmdet"
fi

if need tools; then
    reqs tools --without no-deps --without any-version --held
    step "test, lint and plot tools, openmim (mim train / mim test), triton (its interpreter tests the CUDA kernels on a CPU): ${REQS[*]}"
    pip_install "${REQS[@]}" || die "pip could not install the test tools"
    reqs tools --with no-deps
    pip_install --no-deps "${REQS[@]}" || die "pip could not install ${REQS[*]}"
    # A CUDA build of torch brings the triton it was built with: an installed one is kept.
    reqs tools --with any-version --missing
    [ ${#REQS[@]} -eq 0 ] || pip_install "${REQS[@]}" || die "pip could not install ${REQS[*]}"
fi

if need self; then
    step "mmdet_alrp (editable), with the ranking core's C++ CPU op (about a minute to build)"
    pip_install --no-build-isolation --no-deps -e . || die "pip install -e . failed"
fi

step "check"
py - <<'PY' || die "the installed stack does not import"
import torch, mmengine, mmcv, mmdet, numpy, setuptools, pkg_resources
from mmcv.ops import nms
import mmdet_alrp
print(f"torch {torch.__version__} (CUDA {torch.cuda.is_available()}), mmengine {mmengine.__version__}, "
      f"mmcv {mmcv.__version__} with ops, mmdet {mmdet.__version__}, numpy {numpy.__version__}, "
      f"setuptools {setuptools.__version__}, mmdet_alrp {mmdet_alrp.__version__}")
PY

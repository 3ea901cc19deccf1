# mmdet_alrp: every target but gpu-check installs the measured set (requirements/constraints.txt)
# into .venv first (seconds once installed).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install lint test demo demo-compare demo-segm bench test-core-oldest-torch gpu-check

install:
	@bash tools/install/install.sh

# ruff (ruff.toml): lint and import order, then the formatting check.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install lint
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: install
	$(PY) tools/demo/demo.py

demo-compare: install
	$(PY) tools/demo/demo.py --compare

demo-segm: install
	$(PY) tools/demo/demo.py --segm

bench: install
	$(PY) tools/analysis_tools/benchmark_loss.py

# The torch-only ranking core on torch 2.0.1 in its own venv (not part of `make test`: see the script).
test-core-oldest-torch:
	@bash tools/install/test_core_oldest_torch.sh

# The GPU check (docs/gpu_check.md): on a GPU machine's own Python with a CUDA torch, no install
# step; GPU_CHECK_ARGS='--quick --report PATH' for the short variant and another report file.
GPU_PYTHON ?= python3
GPU_CHECK_ARGS ?=
gpu-check:
	$(GPU_PYTHON) tools/analysis_tools/gpu_check.py $(GPU_CHECK_ARGS)

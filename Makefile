# mmdet_alrp: every target installs the pinned stack into .venv first (seconds once installed).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install test demo demo-compare bench

install:
	@bash tools/install.sh

test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: install
	$(PY) tools/demo.py

demo-compare: install
	$(PY) tools/demo.py --compare

bench: install
	$(PY) tools/benchmark_loss.py

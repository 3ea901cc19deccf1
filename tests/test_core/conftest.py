"""Fixtures of the ranking core's tests (torch only: `make test-core-oldest-torch` and `make
gpu-check` run tests/test_core without mmdet, mmcv or mmengine)."""

import pytest

from alrp_core import ranking as ranking_core


@pytest.fixture(params=[True, False], ids=['filter', 'no-filter'])
def filter_negatives(request, monkeypatch):
    """The relevant-negative filter of the passes over the M logits, on and off."""
    monkeypatch.setattr(ranking_core, 'FILTER_NEGATIVES', request.param)
    return request.param

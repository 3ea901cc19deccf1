"""Fixtures of the ranking core's tests (torch only: `make test-core-oldest-torch` and `make
gpu-check` run tests/test_core without mmdet, mmcv or mmengine)."""

import pytest

from alrp_core.options import ranking_options


@pytest.fixture(params=[True, False], ids=['filter', 'no-filter'])
def filter_negatives(request):
    """The relevant-negative filter of the passes over the M logits, on and off."""
    with ranking_options(filter_negatives=request.param):
        yield request.param

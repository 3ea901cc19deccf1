"""Fixtures shared by the test packages (mmengine imported where used: tests/test_core also runs
on a torch-only install, `make test-core-oldest-torch`)."""

import logging

import pytest


@pytest.fixture
def mmdet_scope_quiet_logs():
    """mmdet's default scope, and MMEngine's logger at ERROR for the test (init_weights and
    checkpoint loading report every parameter otherwise)."""
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet')
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)

"""Which kernels 'auto' takes: the C++ op on a CPU where built, on CUDA ``CUDA_AUTO`` (the torch
ops until a GPU check shows the Triton kernels equal to them and faster), and a forced backend
wherever it can run. The choice needs no GPU: it reads the device's type only."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from alrp_core import backends
from alrp_core.options import ranking_options

CUDA = torch.device('cuda')


def test_auto_takes_the_torch_ops_on_cuda():
    # The default, whatever is installed: no GPU check has shown the Triton kernels sound yet.
    assert backends.CUDA_AUTO == 'torch'
    with ranking_options(backend='auto'):
        assert backends.select_backend(CUDA).name == 'torch'


def test_triton_is_one_setting_away_on_cuda(monkeypatch):
    if 'triton' not in backends.available_backends(CUDA):
        pytest.skip('no triton >= 3.0 in this environment')
    with ranking_options(backend='triton'):
        assert backends.select_backend(CUDA).name == 'triton'
    # The switch that a GPU check's verdict sets.
    monkeypatch.setattr(backends, 'CUDA_AUTO', 'triton')
    with ranking_options(backend='auto'):
        assert backends.select_backend(CUDA).name == 'triton'


def test_auto_falls_back_to_the_torch_ops_where_the_choice_is_missing(monkeypatch):
    monkeypatch.setattr(backends, 'CUDA_AUTO', 'triton')
    monkeypatch.setattr(backends, 'available_backends', lambda device: ['torch'])
    assert backends.select_backend(CUDA, 'auto').name == 'torch'


def test_an_unknown_backend_is_a_named_error():
    with pytest.raises(ValueError, match=r"must be one of \('auto', 'cpp', 'triton', 'torch'\)"):
        with ranking_options(backend='cuda'):
            pass


def test_the_environment_variable_sets_the_backend():
    code = (
        'from alrp_core import backends, options; '
        'print(options.current_options().backend, backends.CUDA_AUTO)'
    )
    run = subprocess.run(
        [sys.executable, '-c', code],
        cwd=Path(__file__).resolve().parents[2],
        env=dict(os.environ, ALRP_CORE_BACKEND='triton'),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ['triton', 'torch']

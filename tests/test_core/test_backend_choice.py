"""Which kernels 'auto' takes: the C++ op on a CPU where built, on CUDA ``CUDA_AUTO`` (the torch
ops until a GPU check shows the Triton kernels equal to them and faster), and a forced backend
wherever it can run. The choice needs no GPU: it reads the device's type only."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from alrp_core import ranking as ranking_core

CUDA = torch.device('cuda')


def test_auto_takes_the_torch_ops_on_cuda(monkeypatch):
    # The default, whatever is installed: no GPU check has shown the Triton kernels sound yet.
    monkeypatch.setattr(ranking_core, 'BACKEND', 'auto')
    assert ranking_core.CUDA_AUTO == 'torch'
    assert ranking_core.select_backend(CUDA) == 'torch'


def test_triton_is_one_setting_away_on_cuda(monkeypatch):
    if 'triton' not in ranking_core.available_backends(CUDA):
        pytest.skip('no triton >= 3.0 in this environment')
    monkeypatch.setattr(ranking_core, 'BACKEND', 'triton')
    assert ranking_core.select_backend(CUDA) == 'triton'
    # The switch that a GPU check's verdict sets.
    monkeypatch.setattr(ranking_core, 'BACKEND', 'auto')
    monkeypatch.setattr(ranking_core, 'CUDA_AUTO', 'triton')
    assert ranking_core.select_backend(CUDA) == 'triton'


def test_auto_falls_back_to_the_torch_ops_where_the_choice_is_missing(monkeypatch):
    monkeypatch.setattr(ranking_core, 'BACKEND', 'auto')
    monkeypatch.setattr(ranking_core, 'CUDA_AUTO', 'triton')
    monkeypatch.setattr(ranking_core, 'available_backends', lambda device: ['torch'])
    assert ranking_core.select_backend(CUDA) == 'torch'


def test_the_environment_variable_sets_the_backend():
    code = 'from alrp_core import ranking; print(ranking.BACKEND, ranking.CUDA_AUTO)'
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

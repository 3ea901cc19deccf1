"""Which kernels 'auto' takes: the C++ op on a CPU where built, on CUDA ``CUDA_AUTO`` (the torch
ops until a GPU check shows the Triton kernels equal to them and faster), and a forced backend
wherever it can run. The choice needs no GPU: it reads the device's type only."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from alrp_core import alrp_loss, backends
from alrp_core.options import current_options, ranking_options

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


def test_options_nest_and_are_restored():
    start = current_options()
    with pytest.raises(RuntimeError, match='inside'):
        with ranking_options(backend='torch', torch_chunk=333) as outer:
            assert (
                outer.chunk(is_cuda=True) == 333
                and outer.filter_negatives == start.filter_negatives
            )
            with ranking_options(filter_negatives=False) as inner:
                assert (inner.backend, inner.torch_chunk, inner.filter_negatives) == (
                    'torch',
                    333,
                    False,
                )
            assert current_options() == outer
            raise RuntimeError('inside')
    assert current_options() == start
    assert (start.chunk(is_cuda=False), start.chunk(is_cuda=True)) == (1 << 20, 1 << 24)


def test_options_are_checked():
    with pytest.raises(TypeError):
        with ranking_options(chunk=4):
            pass
    with pytest.raises(ValueError, match='torch_chunk must be a positive int, got 0'):
        with ranking_options(torch_chunk=0):
            pass


def test_pass_seconds_collect_each_pass():
    seconds = {}
    logits = torch.randn(200, requires_grad=True)
    targets = (torch.arange(200) % 10 == 0).long()
    with ranking_options(pass_seconds=seconds):
        alrp_loss(logits, targets, torch.rand(20))[0].backward()
    assert set(seconds) == {'scan', 'histogram', 'gradient'}
    assert all(value > 0 for value in seconds.values())


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

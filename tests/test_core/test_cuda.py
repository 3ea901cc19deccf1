"""The ranking core on a GPU: each CUDA path (the torch ops and the Triton kernels, compiled for
the device) against the dense float64 oracle and against the CPU. Every test here needs CUDA and
skips without it; ``make gpu-check`` runs them on a lent GPU machine (docs/gpu_check.md)."""

import pytest
import torch
from hypothesis import given, settings

from alrp_core import backends
from alrp_core.batch import prepare_batch
from alrp_core.options import ranking_options

from .strategies import ranking_batches
from .test_ranking import (
    FIXTURES,
    assert_losses_match_the_oracle,
    assert_matches_oracle,
    assert_scan_key_bytes,
    core_outputs,
    crowded_batch,
    key_byte_batch,
    random_batch,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')

CUDA = torch.device('cuda')


@pytest.fixture(params=['torch', 'triton'])
def cuda_backend(request):
    if request.param not in backends.available_backends(CUDA):
        pytest.skip(f'{request.param} is not available on CUDA here')
    with ranking_options(backend=request.param):
        yield request.param


# Fewer examples than on the CPU (where the interpreter runs the same kernels): each new size
# class compiles the kernels for the GPU anew.
@settings(max_examples=15, deadline=None, suppress_health_check=FIXTURES)
@given(batch=ranking_batches(min_pos=1))
def test_cuda_path_matches_the_oracle(batch, cuda_backend, filter_negatives):
    scores, targets, _, delta = batch
    got, grad = assert_matches_oracle(scores.cuda(), targets.cuda(), delta, rtol=2e-5)
    assert got.backend.name == cuda_backend and grad.is_cuda


@settings(max_examples=8, deadline=None, suppress_health_check=FIXTURES)
@given(batch=ranking_batches(min_pos=1, dtype=torch.float64))
def test_cuda_path_in_float64(batch, cuda_backend, filter_negatives):
    scores, targets, _, delta = batch
    _, grad = assert_matches_oracle(scores.cuda(), targets.cuda(), delta, rtol=1e-7)
    assert grad.dtype == torch.float64


def test_cuda_interval_lookup_on_crowded_cells(cuda_backend, filter_negatives):
    scores, targets = crowded_batch()
    assert_matches_oracle(scores.cuda(), targets.cuda(), 0.5, rtol=2e-5)


def assert_cuda_equals_cpu(scores, targets, delta=1.0):
    """FP(i) and the gradient on CUDA equal the CPU's (its default kernels) on the same batch."""
    _, ranks, grad, _, _ = core_outputs(scores.cuda(), targets.cuda(), delta)
    with ranking_options(backend='auto'):
        _, cpu_ranks, cpu_grad, _, _ = core_outputs(scores, targets, delta)
    torch.testing.assert_close(
        ranks.false_positives.cpu(), cpu_ranks.false_positives, rtol=1e-9, atol=1e-8
    )
    torch.testing.assert_close(grad.cpu(), cpu_grad, rtol=1e-6, atol=1e-9)


def test_cuda_many_positives(cuda_backend):
    # 2P + 2 > 65535 interval indices: the Triton kernels store them as int32, not int16.
    scores, targets = random_batch(1_000_000, 10, p_pos=0.04)
    assert int((targets == 1).sum()) > 33000
    assert_cuda_equals_cpu(scores, targets)


def test_cuda_torch_ops_across_chunks(filter_negatives):
    # Small chunks: the per-chunk counts of the scan and the compaction of each chunk.
    scores, targets = random_batch(50_000, 11)
    scores[targets == 0] -= 6 * (torch.rand(int((targets == 0).sum())) < 0.8)
    with ranking_options(backend='torch', torch_chunk=4096):
        assert_cuda_equals_cpu(scores, targets)


def test_cuda_results_are_deterministic(cuda_backend):
    scores, targets = random_batch(2_000_000, 12)
    scores, targets = scores.cuda(), targets.cuda()
    _, first, first_grad, _, _ = core_outputs(scores, targets, 1.0)
    _, second, second_grad, _, _ = core_outputs(scores, targets, 1.0)
    assert torch.equal(first.false_positives, second.false_positives)
    assert torch.equal(first_grad, second_grad)


@pytest.mark.parametrize('dtype', [torch.bool, torch.uint8, torch.int8, torch.int32])
def test_cuda_label_dtypes(cuda_backend, dtype):
    scores, targets = random_batch(3000, 4, p_pos=0.05)
    if dtype in (torch.bool, torch.uint8):
        targets = targets.clamp(min=0)  # no ignored label in these dtypes
    scores = scores.cuda()
    _, ranks, grad, _, _ = core_outputs(scores, targets.to(CUDA, dtype), 1.0)
    _, ref_ranks, ref_grad, _, _ = core_outputs(scores, targets.to(CUDA), 1.0)
    torch.testing.assert_close(ranks.false_positives, ref_ranks.false_positives)
    torch.testing.assert_close(grad, ref_grad)


def test_cuda_checks_name_the_problem(cuda_backend):
    with pytest.raises(ValueError, match='NaN or Inf in logits'):
        prepare_batch(
            torch.tensor([0.0, float('nan')], device=CUDA), torch.tensor([1, 0], device=CUDA)
        )
    with pytest.raises(
        ValueError, match=r'labels outside \{1, 0, -1\} in targets \(found -1 to 3\)'
    ):
        prepare_batch(torch.zeros(3, device=CUDA), torch.tensor([1, -1, 3]).cuda())
    batch = prepare_batch(
        torch.randn(50, device=CUDA), torch.zeros(50, dtype=torch.long, device=CUDA)
    )
    assert batch.num_pos == 0


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_cuda_triton_scan_key_bytes(dtype):
    if 'triton' not in backends.available_backends(CUDA):
        pytest.skip('triton is not available on CUDA here')
    scores, targets = key_byte_batch(dtype)
    with ranking_options(backend='triton'):
        assert_scan_key_bytes(scores.cuda(), targets.cuda())


@pytest.mark.parametrize('case', ['early', 'late'])
def test_cuda_alrp_and_ap_loss(cuda_backend, filter_negatives, case):
    assert_losses_match_the_oracle(case, CUDA)

"""The ranking core on each of its code paths against the dense float64 oracle and each other.

Paths: the torch-op reference (with its CPU index_add_ histogram and its CUDA sort-based one,
and the compaction CUDA uses on torch < 2.6), the C++ CPU op, the Triton kernels (on a CPU through
Triton's interpreter), each with the relevant-negative filter on and off. The file needs torch and
numpy only: ``make test-core-oldest-torch`` runs it on torch 2.0 without mmdet, where the package
``alrp_core`` is imported on its own (the tests of the built kernels then skip).
"""

import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alrp_core import alrp_loss, ap_loss, backends
from alrp_core.backends.torch_ops import compact_by_cumsum, sorted_histogram
from alrp_core.batch import prepare_batch
from alrp_core.checks import check_ranking_tensors
from alrp_core.intervals import ScoreIntervals
from alrp_core.options import current_options, ranking_options
from alrp_core.ranks import rank_positives

from .oracle import relations
from .strategies import ranking_batches

# `make install` builds the C++ op and installs triton; the torch-only run has neither (nor mmdet).
FULL_INSTALL = importlib.util.find_spec('mmdet') is not None

CPU = torch.device('cpu')
# The backend fixtures set options that stay the same for every example.
FIXTURES = [HealthCheck.function_scoped_fixture]


# The cases of the `backend` fixture run on CPU tensors: there the Triton kernels run in Triton's
# interpreter, which must be on before triton is imported, so they run in a child pytest with
# TRITON_INTERPRET=1 (test_triton_kernels_in_the_interpreter); test_cuda.py runs them on a GPU.
TRITON_INTERPRETED = os.environ.get('TRITON_INTERPRET') == '1'


def backends_to_test():
    # `make install` builds the C++ op and installs triton; `make gpu-check` builds the op in place.
    names = [name for name in ('torch', 'cpp') if name in backends.available_backends(CPU)]
    return names + (['triton'] if TRITON_INTERPRETED else [])


def triton_installed() -> bool:
    return backends.load('triton') is not None


@pytest.fixture(params=backends_to_test())
def backend(request):
    with ranking_options(backend=request.param):
        yield request.param


@pytest.mark.skipif(
    TRITON_INTERPRETED or not triton_installed(),
    reason='the Triton cases run in this process (or no triton >= 3.0)',
)
def test_triton_kernels_in_the_interpreter():
    run = subprocess.run(
        [
            sys.executable,
            '-m',
            'pytest',
            __file__,
            '-o',
            'addopts=',
            '-q',
            '-p',
            'no:cacheprovider',
            '-k',
            'triton',
        ],
        env=dict(os.environ, TRITON_INTERPRET='1', CUDA_VISIBLE_DEVICES=''),  # CPU tensors only
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert ' passed' in run.stdout and ' failed' not in run.stdout


def core_outputs(scores, targets, delta, scale=1.5):
    """FP, rank+ and the scaled error-driven gradient for fixed per-positive weights."""
    batch = prepare_batch(scores, targets, None, delta)
    ranks = rank_positives(batch)
    num_pos = batch.num_pos
    weights = 1 + 0.5 * torch.sin(torch.arange(num_pos, dtype=torch.float64))
    pos_grad = -torch.cos(torch.arange(num_pos, dtype=torch.float64))
    gradient = ranks.negatives.error_driven_gradient(
        weights.to(scores.device), pos_grad.to(scores.device)
    )
    grad = gradient(torch.tensor(scale, dtype=scores.dtype, device=scores.device))
    return batch, ranks, grad, weights.numpy(), pos_grad.numpy()


def assert_matches_oracle(scores, targets, delta, rtol, scale=1.5):
    batch, ranks, grad, weights, pos_grad = core_outputs(scores, targets, delta, scale)
    s, pos, neg, rel, _, fp, rank_pos, _ = relations(
        scores.double().cpu().numpy(), targets.long().cpu().numpy(), delta
    )
    ref = np.zeros_like(s)
    ref[neg] = scale * (weights @ rel[:, neg])
    ref[pos] = scale * pos_grad
    np.testing.assert_allclose(
        ranks.false_positives.cpu().numpy(), fp, rtol=rtol, atol=rtol * max(fp.max(initial=0), 1)
    )
    np.testing.assert_allclose(ranks.rank_pos.cpu().numpy(), rank_pos, rtol=rtol)
    np.testing.assert_allclose(
        grad.double().cpu().numpy(),
        ref,
        rtol=rtol,
        atol=rtol * max(np.abs(ref).max(initial=0), 1e-12),
    )
    return batch, grad


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURES)
@given(batch=ranking_batches(min_pos=1))
def test_each_path_matches_the_oracle(batch, backend, filter_negatives):
    scores, targets, _, delta = batch
    got, _ = assert_matches_oracle(scores, targets, delta, rtol=2e-5)
    assert got.backend.name == backend and got.filter_negatives == filter_negatives


@settings(max_examples=20, deadline=None, suppress_health_check=FIXTURES)
@given(batch=ranking_batches(min_pos=1, dtype=torch.float64))
def test_each_path_in_float64(batch, backend, filter_negatives):
    scores, targets, _, delta = batch
    _, grad = assert_matches_oracle(scores, targets, delta, rtol=1e-7)
    assert grad.dtype == torch.float64


def random_batch(m, seed, p_pos=0.01, spread=3.0):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(m, generator=gen) * spread
    targets = (torch.rand(m, generator=gen) < p_pos).long()
    targets[torch.rand(m, generator=gen) < 0.05] = -1
    return scores, targets


def assert_agrees_with_torch_ops(scores, targets, delta, ranks, grad, **options):
    """FP(i) and the gradient of a kernel path (``ranks``, ``grad`` from :func:`core_outputs`)
    equal the torch-op reference's on the same batch (with ``options`` besides)."""
    with ranking_options(backend='torch', **options):
        _, ref_ranks, ref_grad, _, _ = core_outputs(scores, targets, delta)
    torch.testing.assert_close(
        ranks.false_positives, ref_ranks.false_positives, rtol=1e-10, atol=1e-9
    )
    torch.testing.assert_close(grad, ref_grad, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize('seed', [0, 1])
def test_kernels_agree_with_the_torch_reference(backend, filter_negatives, seed):
    # Large enough for many chunks of the C++ op and blocks of Triton; a late-training mix
    # (most negatives far below every positive) on seed 1.
    scores, targets = random_batch(200000 if backend != 'triton' else 20000, seed)
    if seed == 1:
        scores[targets == 0] -= 8 * (torch.rand(int((targets == 0).sum())) < 0.9)
    _, ranks, grad, _, _ = core_outputs(scores, targets, 0.5)
    assert_agrees_with_torch_ops(scores, targets, 0.5, ranks, grad, filter_negatives=True)


def crowded_batch():
    """Tied positives, negatives exactly on s_i -/+ delta (they belong to the upper interval),
    a cluster of 300 positives within 1e-4 next to a far one (hundreds of boundaries in one grid
    cell: the binary-search path), and scores beyond both ends; for delta 0.5."""
    pos = torch.cat([torch.tensor([0.0, 0.0, 1.0, 1.0, 250.0]), 2.0 + torch.arange(300) * 3e-7])
    neg = torch.cat(
        [
            pos - 0.5,
            pos + 0.5,
            torch.tensor([-1e4, -0.5000001, 1e4, 250.49]),
            torch.linspace(-1, 3, 4001),
        ]
    )
    scores = torch.cat([pos, neg])
    targets = torch.cat([torch.ones(pos.numel()), torch.zeros(neg.numel())]).long()
    return scores, targets


def test_interval_lookup_on_boundaries_ties_and_crowded_cells(backend, filter_negatives):
    assert_matches_oracle(*crowded_batch(), 0.5, rtol=2e-5)


def test_no_relevant_negative(backend, filter_negatives):
    scores = torch.tensor([5.0, 6.0, -3.0, -10.0, 3.9, 4.0])
    targets = torch.tensor([1, 1, 0, 0, 0, -1])
    _, ranks, grad, _, pos_grad = core_outputs(scores, targets, 0.5)
    assert ranks.false_positives.tolist() == [0.0, 0.0]
    assert grad[2:].tolist() == [0.0] * 4
    np.testing.assert_allclose(grad[:2].numpy(), 1.5 * pos_grad, rtol=1e-6)


def test_no_positive(backend, filter_negatives):
    batch = prepare_batch(torch.randn(50), torch.zeros(50, dtype=torch.long))
    assert batch.num_pos == 0 and batch.pos_index.shape == (0,)
    empty = prepare_batch(torch.zeros(0), torch.zeros(0, dtype=torch.long))
    assert empty.num_pos == 0


@pytest.mark.parametrize('dtype', [torch.bool, torch.uint8, torch.int8, torch.int32])
def test_label_dtypes(backend, dtype):
    scores, targets = random_batch(3000, 4, p_pos=0.05)
    if dtype in (torch.bool, torch.uint8):
        targets = targets.clamp(min=0)  # no ignored label in these dtypes
    _, ranks, grad, _, _ = core_outputs(scores, targets.to(dtype), 1.0)
    _, ref_ranks, ref_grad, _, _ = core_outputs(scores, targets.long(), 1.0)
    torch.testing.assert_close(ranks.false_positives, ref_ranks.false_positives)
    torch.testing.assert_close(grad, ref_grad)


def test_checks_name_the_problem_on_each_path(backend):
    with pytest.raises(ValueError, match='NaN or Inf in logits'):
        prepare_batch(torch.tensor([0.0, float('inf')]), torch.tensor([1, 0]))
    with pytest.raises(
        ValueError, match=r'labels outside \{1, 0, -1\} in targets \(found -1 to 3\)'
    ):
        prepare_batch(torch.zeros(3), torch.tensor([1, -1, 3]))
    with pytest.raises(ValueError, match='NaN or Inf in loc_errors'):
        prepare_batch(torch.zeros(3), torch.tensor([1, 0, 1]), torch.tensor([0.5, float('nan')]))
    with pytest.raises(ValueError, match='loc_errors has 1 elements but targets has 2 positives'):
        prepare_batch(torch.zeros(3), torch.tensor([1, 0, 1]), torch.tensor([0.5]))


@pytest.mark.parametrize(
    'args, per_positive, match',
    [
        ((torch.zeros(2, dtype=torch.long), torch.tensor([1, 0])), {}, 'logits must be a floating'),
        ((torch.zeros(2), torch.tensor([1.0, 0.0])), {}, 'targets must be an integer or bool'),
        ((torch.zeros(2), [1, 0]), {}, 'targets must be a torch.Tensor, got list'),
        ((torch.zeros(2), torch.tensor([1, 0, 0])), {}, r'targets has 3 elements \(shape \(3,\)\)'),
        ((torch.zeros(2), torch.tensor([1, 0])), {'ious': None}, 'ious must be a torch.Tensor'),
        (
            (torch.zeros(2), torch.tensor([1, 0])),
            {'ious': torch.ones(1, dtype=torch.long)},
            'ious must be a floating-point tensor',
        ),
        (
            (torch.zeros(2), torch.tensor([1, 0])),
            {'loc_errors': torch.ones(1, 1)},
            r'loc_errors must be one-dimensional .* shape \(1, 1\)',
        ),
    ],
)
def test_tensor_checks_name_the_argument(args, per_positive, match):
    with pytest.raises(ValueError, match=match):
        check_ranking_tensors(*args, **per_positive)


@pytest.mark.parametrize('late', [False, True])
def test_cpp_op_does_not_depend_on_the_thread_count(late):
    if 'cpp' not in backends.available_backends(CPU):
        pytest.skip('the C++ op is not built in this environment')
    scores, targets = random_batch(300000, 5)
    if late:  # the positives high: few negatives in reach, every chunk sparse
        positive = targets == 1
        scores[positive] = 8 + torch.rand(
            int(positive.sum()), generator=torch.Generator().manual_seed(1)
        )
    previous = torch.get_num_threads()
    outputs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            _, ranks, grad, _, _ = core_outputs(scores, targets, 1.0)
            outputs.append((ranks.false_positives, grad))
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(outputs[0][0], outputs[1][0]) and torch.equal(outputs[0][1], outputs[1][1])


@pytest.mark.skipif('cpp' not in backends.available_backends(CPU), reason='no C++ op built')
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_cpp_argsort_equals_the_stable_torch_sort(dtype):
    gen = torch.Generator().manual_seed(5)
    runs = torch.sort(torch.rand(3, 500, generator=gen)).values
    cases = [
        torch.randn(9000, generator=gen) * 1e3,
        runs.view(-1),  # ascending runs, as ScoreIntervals sorts them
        torch.randint(-3, 4, (4000,), generator=gen).float(),  # ties
        torch.tensor([0.0, -0.0, 1.0, -1.0, -0.0, 0.0, 1e-40, -1e-40, 3e38, -3e38]),
        torch.zeros(0),
        torch.ones(1),
    ]
    for values in cases:
        values = values.to(dtype)
        got = backends.load('cpp').argsort(values)
        assert torch.equal(got, backends.stable_argsort(values))


def test_the_build_provides_the_kernels():
    if not FULL_INSTALL:
        pytest.skip('the torch-only run has no built op')
    assert backends.select_backend(CPU, 'auto').name == 'cpp'  # `make install` builds it
    assert backends.load('triton') is not None


def test_unavailable_backend_is_a_named_error(monkeypatch):
    monkeypatch.delenv('TRITON_INTERPRET', raising=False)
    with ranking_options(backend='triton'):
        with pytest.raises(RuntimeError, match="backend 'triton' is not available on cpu"):
            prepare_batch(torch.zeros(2), torch.tensor([1, 0]))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 400), st.integers(0, 2**31), st.sampled_from([0.0, 0.01, 0.5, 1.0]))
def test_cuda_compaction_without_nonzero_static(m, seed, density):
    mask = torch.rand(m, generator=torch.Generator().manual_seed(seed)) < density
    count = int(mask.sum())
    assert torch.equal(compact_by_cumsum(mask, count), torch.nonzero(mask)[:, 0])


@settings(max_examples=30, deadline=None)
@given(batch=ranking_batches(min_pos=1, dtype=torch.float64))
def test_sorted_histogram_equals_index_add(batch):
    # The CUDA torch-op histogram (sort + prefix sums, no atomics) against the CPU one.
    scores, targets, _, delta = batch
    pos = scores[targets == 1]
    ascending = torch.argsort(pos)
    intervals = ScoreIntervals(pos[ascending] - pos.min(), ascending, delta)
    x = scores[targets == 0] - pos.min()
    hist = sorted_histogram(x, intervals.bounds, intervals.num_bins)
    k = intervals.locate(x)
    count = torch.zeros(intervals.num_bins, dtype=torch.float64).index_add_(
        0, k, torch.ones_like(x)
    )
    moment = torch.zeros_like(count).index_add_(0, k, x)
    moment[0] = 0
    moment[intervals.dummy - 1 :] = 0
    torch.testing.assert_close(hist[0], count)
    torch.testing.assert_close(
        hist[1], moment, rtol=1e-9, atol=1e-9 * (1 + float(x.abs().max()) if x.numel() else 1)
    )


def test_gradient_is_computed_in_backward_and_scaled(backend):
    scores, targets = random_batch(5000, 6, p_pos=0.02)
    errors = torch.rand(int((targets == 1).sum()))
    logits = scores.clone().requires_grad_(True)
    loss_cls, _ = alrp_loss(logits, targets, errors)
    (3 * loss_cls).backward(retain_graph=True)
    first = logits.grad.clone()
    logits.grad = None
    loss_cls.backward(retain_graph=True)
    torch.testing.assert_close(first, 3 * logits.grad)
    with torch.no_grad():
        logits.add_(1)
    with pytest.raises(RuntimeError, match='modified by an inplace operation'):
        loss_cls.backward()


def test_each_alrp_part_backpropagates_alone_and_scaled(backend):
    # One autograd node carries both parts: a part the loss leaves out gives its input no
    # gradient, and each part's gradient follows its own incoming gradient.
    from .oracle import alrp_oracle

    scores, targets = random_batch(3000, 9, p_pos=0.03)
    errors = torch.rand(int((targets == 1).sum()), generator=torch.Generator().manual_seed(9))
    _, _, ref_grad, ref_grad_e = alrp_oracle(scores.double().numpy(), targets.numpy(), errors)
    for cls_scale, loc_scale in [(1.0, 0.0), (0.0, 1.0), (2.0, -3.0)]:
        logits = scores.clone().requires_grad_(True)
        loc_errors = errors.clone().requires_grad_(True)
        loss_cls, loss_loc = alrp_loss(logits, targets, loc_errors)
        parts = [(cls_scale, loss_cls), (loc_scale, loss_loc)]
        sum(scale * part for scale, part in parts if scale).backward()
        if cls_scale:
            np.testing.assert_allclose(
                logits.grad.double().numpy(), cls_scale * ref_grad, rtol=1e-5, atol=1e-9
            )
        else:
            assert logits.grad is None
        if loc_scale:
            np.testing.assert_allclose(
                loc_errors.grad.double().numpy(), loc_scale * ref_grad_e, rtol=1e-5, atol=1e-9
            )
        else:
            assert loc_errors.grad is None


def assert_losses_match_the_oracle(case: str, device: torch.device) -> None:
    """aLRP Loss (values and the logits' gradient) and AP Loss (gradient) of a batch on
    ``device`` under bfloat16 autocast against the oracle; 'late': most negatives far below."""
    from .oracle import alrp_oracle, ap_oracle

    scores, targets = random_batch(4000, 7, p_pos=0.02)
    if case == 'late':
        scores[targets == 0] -= 10 * (torch.rand(int((targets == 0).sum())) < 0.95)
    errors = torch.rand(int((targets == 1).sum()))
    logits = scores.to(device, copy=True).requires_grad_(True)
    labels = targets.to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16):  # a custom Function: in float32
        loss_cls, loss_loc = alrp_loss(logits, labels, errors.to(device))
    loss_cls.backward()
    ref_cls, ref_loc, ref_grad, _ = alrp_oracle(
        scores.double().numpy(), targets.numpy(), errors.double().numpy()
    )
    assert loss_cls.dtype == torch.float32
    assert loss_cls.item() == pytest.approx(ref_cls, rel=1e-5)
    assert loss_loc.item() == pytest.approx(ref_loc, rel=1e-5)
    np.testing.assert_allclose(
        logits.grad.double().cpu().numpy(),
        ref_grad,
        rtol=1e-5,
        atol=1e-5 * np.abs(ref_grad).max(),
    )
    logits.grad = None
    ap_loss(logits, labels).backward()
    ref_ap, ref_ap_grad = ap_oracle(scores.double().numpy(), targets.numpy())
    np.testing.assert_allclose(
        logits.grad.double().cpu().numpy(),
        ref_ap_grad,
        rtol=1e-5,
        atol=1e-5 * np.abs(ref_ap_grad).max(),
    )


@pytest.mark.parametrize('case', ['early', 'late'])
def test_alrp_and_ap_loss_on_each_path(backend, filter_negatives, case):
    assert_losses_match_the_oracle(case, CPU)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('cuda_backend', ['torch', 'triton'])
def test_cuda_paths_match_the_cpu(cuda_backend, filter_negatives):
    scores, targets = random_batch(300000, 8)
    scores[targets == 0] -= 6 * (torch.rand(int((targets == 0).sum())) < 0.8)
    _, ranks, grad, _, _ = core_outputs(scores, targets, 1.0)
    scores, targets = scores.cuda(), targets.cuda()
    num_pos = int((targets == 1).sum())
    weights = (1 + 0.5 * torch.sin(torch.arange(num_pos, dtype=torch.float64))).cuda()
    pos_grad = -torch.cos(torch.arange(num_pos, dtype=torch.float64)).cuda()
    scale = torch.tensor(1.5, device='cuda')
    with ranking_options(backend=cuda_backend):
        core_outputs(scores, targets, 1.0)  # compiles the kernels
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode('warn')
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                batch = prepare_batch(scores, targets, None, 1.0)
                cuda_ranks = rank_positives(batch)
                cuda_grad = cuda_ranks.negatives.error_driven_gradient(weights, pos_grad)(scale)
        finally:
            torch.cuda.set_sync_debug_mode('default')
    syncs = [w for w in caught if 'synchroniz' in str(w.message)]
    assert len(syncs) == 1, [str(w.message) for w in syncs]  # the one of prepare_batch
    assert batch.backend.name == cuda_backend
    torch.testing.assert_close(
        cuda_ranks.false_positives.cpu(), ranks.false_positives, rtol=1e-9, atol=1e-8
    )
    torch.testing.assert_close(cuda_grad.cpu(), grad, rtol=1e-6, atol=1e-9)
    if cuda_backend == 'torch':  # the compaction that torch < 2.6 uses on CUDA
        mask = targets == 1
        assert torch.equal(compact_by_cumsum(mask, num_pos).cpu(), torch.nonzero(mask.cpu())[:, 0])


def key_bytes_oracle(scores, targets):
    """The kernels' key byte of every logit: 0 positive, 1 ignored, a negative
    clamp(floor(8 s + 130), 2, 255) in the scores' dtype (s * 8 is exact)."""
    s = scores.numpy()
    level = np.clip(np.floor(s * s.dtype.type(8) + s.dtype.type(130)), 2, 255)
    t = targets.numpy()
    return np.where(t == 1, 0, np.where(t == 0, level, 1)).astype(np.uint8)


def kernel_scan(scores, targets):
    """The selected kernel backend's scan result, decoded."""
    pending = backends.select_backend(scores.device).scan(scores, targets, 1.0, current_options())
    return pending.decode(pending.stats.tolist())


def key_byte_batch(dtype: torch.dtype):
    """Level edges (s * 8 + 130 an integer), their neighbours, both clamped ends, and every
    label."""
    edges = torch.arange(-17.0, 17.0, 0.125, dtype=dtype)
    tiny = torch.finfo(dtype).eps * 16
    scores = torch.cat(
        [
            edges,
            edges - tiny,
            edges + tiny,
            torch.tensor([-1e30, 1e30, 0.0, -0.0, -15.875, 15.5, 15.625], dtype=dtype),
        ]
    )
    targets = torch.zeros(scores.numel(), dtype=torch.long)
    targets[::7] = 1
    targets[3::11] = -1
    return scores, targets


def assert_scan_key_bytes(scores, targets):
    """The selected kernels' scan gives the key bytes of the oracle and the right findings."""
    scan = kernel_scan(scores, targets)
    targets = targets.cpu()
    np.testing.assert_array_equal(
        scan.state.keys.cpu().numpy(), key_bytes_oracle(scores.cpu(), targets)
    )
    assert (scan.finite, scan.label_min, scan.label_max) == (True, -1.0, 1.0)
    assert scan.num_pos == int((targets == 1).sum())
    assert torch.equal(scan.pos_index.cpu(), torch.nonzero(targets == 1)[:, 0])


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_scan_key_bytes(backend, dtype):
    if backend == 'torch':
        pytest.skip('the torch-op path keeps no key bytes')
    assert_scan_key_bytes(*key_byte_batch(dtype))


SCAN_LABEL_DTYPES = [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool]
# Per label dtype, values out of {1, 0, -1} (for int64 also two whose low 32 bits read 0 and 1).
BAD_LABELS = {
    torch.int64: [2, -2, 2**32, -(2**32) + 1],
    torch.int32: [2, -2],
    torch.int16: [2, -2],
    torch.int8: [2, -2],
    torch.uint8: [2, 255],
    torch.bool: [],
}


@pytest.fixture(params=[True, False], ids=['avx2', 'generic'])
def cpp_scan(request):
    """The C++ op's scan with its AVX2 path on (where the CPU has it) or off."""
    if 'cpp' not in backends.available_backends(CPU):
        pytest.skip('the C++ op is not built in this environment')
    cpu_op = backends.load('cpp').op
    was = cpu_op.set_avx2(request.param)
    yield cpu_op.scan
    cpu_op.set_avx2(was)


@pytest.mark.parametrize('label_dtype', SCAN_LABEL_DTYPES)
@pytest.mark.parametrize('score_dtype', [torch.float32, torch.float64])
def test_cpp_scan_on_each_label_dtype(cpp_scan, label_dtype, score_dtype):
    # 32 logits a step on the AVX2 path: 1000 + 37 ends in a tail, and two chunks are crossed.
    cpu_op = backends.load('cpp').op
    m = cpu_op.CHUNK + 1037
    scores, targets = random_batch(m, 12, p_pos=0.03, spread=20.0)
    scores = scores.to(score_dtype)
    if label_dtype in (torch.uint8, torch.bool):
        targets = targets.clamp(min=0)
    labels = targets.to(label_dtype)
    stats, pos_index, keys, chunk_max = cpp_scan(scores, labels)
    want = key_bytes_oracle(scores, targets)
    np.testing.assert_array_equal(keys.numpy(), want)
    assert torch.equal(pos_index, torch.nonzero(targets == 1).squeeze(1))
    assert stats.tolist() == [1.0, -1.0, 1.0, float((targets == 1).sum())]
    assert chunk_max.tolist() == [int(want[: cpu_op.CHUNK].max()), int(want[cpu_op.CHUNK :].max())]
    # A NaN or Inf, and each label out of range, found in a 32-logit step and in the tail.
    for at in (40, m - 3):
        bad_scores = scores.clone()
        bad_scores[at] = float('nan') if at == 40 else float('-inf')
        assert cpp_scan(bad_scores, labels)[0][0] == 0
        for value in BAD_LABELS[label_dtype]:
            bad = targets.clone()
            bad[at] = value
            stats = cpp_scan(scores, bad.to(label_dtype))[0]
            low, high = min(value, -1), max(value, 1)
            if label_dtype in (torch.uint8, torch.bool):
                low = 0
            assert stats[1:3].tolist() == [low, high], (value, at)


def chunked_batch(chunk):
    """Six chunks of the C++ op: (0) every negative far below every positive's window, (1)
    most negatives within reach, (2) a few, (3) a few and (4) all negatives just below the
    lowest window (their key at the threshold's level, so read, but none binned: a sparse and a
    dense chunk), (5) a partial chunk with the positives and ignored logits. Positives at 1.0 and
    2.5 with delta 1: the lowest boundary is 0.0, its key level [-0.125, 0)."""
    gen = torch.Generator().manual_seed(3)
    parts = [
        torch.rand(chunk, generator=gen) * -5 - 6,
        torch.rand(chunk, generator=gen) * 4 - 0.5,
        torch.rand(chunk, generator=gen) * -5 - 6,
        torch.rand(chunk, generator=gen) * -5 - 6,
        -torch.rand(chunk, generator=gen) * 0.1 - 1e-6,
        torch.rand(chunk // 2, generator=gen) * 6 - 3,
    ]
    parts[2][::4096] = torch.linspace(0.0, 3.5, parts[2][::4096].numel())
    parts[3][::8] = -torch.rand(chunk // 8, generator=gen) * 0.1 - 1e-6
    parts[5][:3] = torch.tensor([1.0, 2.5, 1.0])
    scores = torch.cat(parts)
    targets = torch.zeros(scores.numel(), dtype=torch.long)
    start = 5 * chunk
    targets[start : start + 3] = 1
    targets[start + 3 :: 5] = -1
    return scores, targets


def test_cpp_chunks_skipped_sparse_and_dense(filter_negatives):
    if 'cpp' not in backends.available_backends(CPU):
        pytest.skip('the C++ op is not built in this environment')
    chunk = backends.load('cpp').op.CHUNK
    scores, targets = chunked_batch(chunk)
    with ranking_options(backend='cpp'):
        assert_matches_oracle(scores, targets, 1.0, rtol=2e-5)
        _, ranks, grad, _, _ = core_outputs(scores, targets, 1.0)
    counts, entries = ranks.negatives.selection
    if filter_negatives:
        third = slice(2 * chunk, 3 * chunk)
        sparse = int(((scores[third] >= 0) & (targets[third] == 0)).sum())
        assert counts.tolist()[:5] == [0, -1, sparse, 0, -1]
        # A dense chunk: every logit's interval (none binned here: all the dummy).
        assert entries[4 * chunk : 5 * chunk].tolist() == [ranks.intervals.dummy] * chunk
        # A sparse chunk: (offset, interval) pairs of its binned negatives.
        pairs = entries[2 * chunk : 2 * chunk + 2 * sparse].long().reshape(-1, 2)
        binned = 2 * chunk + pairs[:, 0]
        assert torch.equal(binned, torch.nonzero(scores[third] >= 0)[:, 0] + 2 * chunk)
        x = scores[binned].double() - scores[targets == 1].double().min()
        assert torch.equal(pairs[:, 1], ranks.intervals.locate(x))
    else:  # every negative binned: dense where most of a chunk is negative
        assert counts.tolist() == [-1] * 6
    assert torch.all(grad[:chunk] == 0) and torch.all(grad[3 * chunk : 5 * chunk] == 0)
    assert_agrees_with_torch_ops(scores, targets, 1.0, ranks, grad)


@pytest.mark.parametrize('reach, form', [(0.4, 'sparse'), (0.9, 'dense')])
def test_cpp_chunk_sparse_at_first_and_binned_further_on(reach, form):
    # The first eighth of chunk 0 decides its form (sparse: all far below every window), but
    # `reach` of the rest is within reach: pairs where they fit in the chunk's entries (0.4),
    # else every logit's interval (0.9). Either way the sums equal the torch ops'.
    if 'cpp' not in backends.available_backends(CPU):
        pytest.skip('the C++ op is not built in this environment')
    chunk = backends.load('cpp').op.CHUNK
    gen = torch.Generator().manual_seed(8)
    scores = torch.rand(chunk + 100, generator=gen) * -5 - 6
    near = torch.rand(chunk, generator=gen) < reach
    near[: chunk // 8] = False
    scores[:chunk][near] = torch.rand(int(near.sum()), generator=gen) * 3
    targets = torch.zeros(scores.numel(), dtype=torch.long)
    targets[chunk:] = 1
    scores[chunk:] = torch.rand(100, generator=gen) + 1
    with ranking_options(backend='cpp'):
        _, ranks, grad, _, _ = core_outputs(scores, targets, 1.0)
    counts, _ = ranks.negatives.selection
    binned = int((scores[:chunk].double() - scores[chunk:].double().min() >= -1).sum())
    assert 0.3 * chunk < binned <= near.sum()
    assert counts.tolist() == [binned if form == 'sparse' else -1, 0]
    assert_agrees_with_torch_ops(scores, targets, 1.0, ranks, grad)


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURES)
@given(origin=st.floats(-40, 40, width=32), delta=st.floats(0.01, 8), seed=st.integers(0, 2**31))
def test_negatives_next_to_the_lowest_boundary(backend, origin, delta, seed):
    # Negatives within a few ulps and within a key level of min_i s_i - delta, on either side:
    # the key filter of the kernels must keep every one the window reaches.
    base = torch.tensor(origin - delta, dtype=torch.float32)
    ulps = torch.arange(-6, 7, dtype=torch.float32)
    near = torch.nextafter(base, base + 1) - base if base != 0 else torch.tensor(1e-7)
    gen = torch.Generator().manual_seed(seed)
    spread = (torch.rand(50, generator=gen) - 0.5) / 2
    negatives = torch.cat([base + ulps * near.abs(), base + spread])
    positives = torch.tensor([origin, origin + 0.3 * delta], dtype=torch.float32)
    scores = torch.cat([positives, negatives])
    targets = torch.cat([torch.ones(2), torch.zeros(negatives.numel())]).long()
    assert_matches_oracle(scores, targets, delta, rtol=2e-5)


def with_neighbours(values: torch.Tensor, ulps: int = 2) -> torch.Tensor:
    """``values`` and the values up to ``ulps`` ulps (of their dtype) above and below each."""
    out, up, down = [values], values, values
    for _ in range(ulps):
        up = torch.nextafter(up, torch.full_like(up, float('inf')))
        down = torch.nextafter(down, torch.full_like(down, float('-inf')))
        out += [up, down]
    return torch.cat(out)


def threshold_batch(chunk, dtype, delta, case):
    """Two chunks of the C++ op for the interval lookup's edges. Positives: for ``case``
    'spread', some far apart, a tie, 60 within a few ulps of 5 (many boundaries in one grid
    cell: the binary search) and one at delta (its lower boundary is the score 0); for 'tied',
    8 equal ones (for delta 0, every boundary equal). Negatives: on every s_i -/+ delta and s_i
    and 2 ulps either side; at and next to 0 down to the least subnormal (where a long run of
    scores has one shifted value); far below and above every boundary. Chunk 0 has them with
    negatives in reach besides (a dense chunk), chunk 1 among ignored logits (a sparse one, with
    the filter on or off)."""
    eps = torch.finfo(dtype).eps
    if case == 'spread':
        far = torch.tensor([-3.0, -0.25, 0.3, 1.0, 1.0, 2.0, delta], dtype=dtype)
        pos = torch.cat([far, 5.0 + torch.arange(60, dtype=dtype) * 8 * eps])
    else:
        pos = torch.full((8,), 0.7, dtype=dtype)
    least = torch.nextafter(torch.zeros(1, dtype=dtype), torch.ones(1, dtype=dtype))
    zeros = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 1e-8, -1e-8], dtype=dtype)
    edges = torch.cat(
        [
            with_neighbours(torch.cat([pos - delta, pos + delta, pos])),
            with_neighbours(torch.cat([zeros, least, -least])),
            torch.tensor([-1e30, -1e4, 1e4, 1e30], dtype=dtype),
        ]
    )
    gen = torch.Generator().manual_seed(11)
    low = float(pos.min()) - delta - 0.5
    span = float(pos.max()) + delta + 0.5 - low
    filler = low + torch.rand(chunk - pos.numel() - edges.numel(), generator=gen) * span
    sparse = torch.zeros(chunk, dtype=dtype)
    at = torch.randperm(chunk - chunk // 8, generator=gen)[: edges.numel()] + chunk // 8
    sparse[at] = edges
    scores = torch.cat([pos, edges, filler.to(dtype), sparse])
    targets = torch.zeros(scores.numel(), dtype=torch.long)
    targets[: pos.numel()] = 1
    targets[chunk:] = -1
    targets[chunk + at] = 0
    return scores, targets


def selected_intervals(selection, m, chunk, dummy):
    """Every logit's interval from the C++ op's selection (the dummy where not binned)."""
    counts, entries = selection
    entries = entries.long() & 0xFFFF if entries.dtype == torch.int16 else entries.long()
    out = torch.full((m,), dummy, dtype=torch.long)
    for c, count in enumerate(counts.tolist()):
        j0, j1 = c * chunk, min(m, (c + 1) * chunk)
        if count < 0:
            out[j0:j1] = entries[j0:j1]
        else:
            pairs = entries[j0 : j0 + 2 * count].reshape(-1, 2)
            out[j0 + pairs[:, 0]] = pairs[:, 1]
    return out


@pytest.mark.parametrize('case', ['spread', 'tied'])
@pytest.mark.parametrize('delta', [0.0, 0.5, 0.3])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_cpp_intervals_at_the_boundaries_equal_the_torch_ops(dtype, delta, case, filter_negatives):
    # The op finds a score's interval from the score in its own dtype, against thresholds of that
    # dtype: every negative's interval must be the searchsorted one of its shifted float64 score.
    if 'cpp' not in backends.available_backends(CPU):
        pytest.skip('the C++ op is not built in this environment')
    chunk = backends.load('cpp').op.CHUNK
    scores, targets = threshold_batch(chunk, dtype, delta, case)
    with ranking_options(backend='cpp'):
        _, ranks, grad, _, _ = core_outputs(scores, targets, delta)
    counts, _ = ranks.negatives.selection
    assert counts[0] == -1 and counts[1] >= 0  # a dense chunk, a sparse one
    intervals = ranks.intervals
    got = selected_intervals(ranks.negatives.selection, scores.numel(), chunk, intervals.dummy)
    want = intervals.locate(scores.double() - ranks.negatives.origin)
    binned = (targets == 0) & ((want > 0) | (not filter_negatives))
    want = torch.where(binned, want, intervals.dummy)
    assert torch.equal(got, want), torch.nonzero(got != want)[:8, 0].tolist()
    assert_agrees_with_torch_ops(scores, targets, delta, ranks, grad)

"""Speed, memory and accuracy of our aLRP Loss and Rank & Sort Loss against a per-positive loop
and a floor pass.

The loop references follow the papers' equations the way the public code computes them: a Python
loop over the P positives, each ranked against every relevant negative (O(P * M)) and, for Rank &
Sort Loss, against every positive (O(P^2)): written here from the papers' definitions, in the
structure of the RS code's loop (positives in ascending score order, each positive's errors and
updates from its dense relations to the relevant negatives and to the positives). The floor
pass, ``torch.where(targets == 0, logits, 0)``, reads the logits and labels once and writes one
gradient-sized tensor: no loss can do with less. All three run in the same process on the same
inputs; accuracy is measured against the loop reference run in float64.

    python tools/analysis_tools/benchmark_loss.py                # the CPU table (minutes, 2 cores)
    python tools/analysis_tools/benchmark_loss.py --quick        # small sizes only
    python tools/analysis_tools/benchmark_loss.py --device cuda  # the device table on a GPU (below)
    python tools/analysis_tools/benchmark_loss.py --passes       # also each pass over the M logits
    python tools/analysis_tools/benchmark_loss.py --labels int8  # the label dtype the heads pass
    python tools/analysis_tools/benchmark_loss.py --loss rs      # Rank & Sort Loss only

Each loss has its own table (``--loss all``, the default, prints both): aLRP Loss on M = 1e5 to
8e6 logits with P = 100 and 1000, Rank & Sort Loss on the same and on M = 2.6e6 with P = 8000
(16 images x 2000 proposals x 80 classes: an RS R-CNN batch, which keeps every proposal), its
IoU targets uniform in [0, 1).

Columns: forward + backward milliseconds (best of --repeat runs, 10 by default; the loop once
when it takes over a second: with glibc's default allocator, a freed heap top above its trim
threshold goes back to the kernel now and then, and the next call faults its tensors' pages in
afresh, 5-8 ms more at M = 8e6 for ours and the floor pass alike; the best run is one without),
the speed-up loop / ours, ours / floor, peak extra memory per logit of ours (RSS
high-water mark above the inputs on CPU, measured in a child process that maps every large
allocation afresh so that reused heap pages cannot hide it, while the timings run with glibc's
default allocator; allocator peak on CUDA), and the maximum relative error
of ours vs the float64 reference: for the two loss values |ours - ref| / |ref|, for the gradients
max |ours - ref| / max |ref| (Rank & Sort Loss: the gradient of loss_rank + loss_sort). The last
lines of a table say PASS or FAIL for each target of that loss.
With --passes, a line under each row gives the wall milliseconds per pass of the ranking
core (scan, histogram, gradient) and the rest (the P-sized steps, autograd, Python), each the
least over --repeat calls.

The device table (``--device cuda``; ``make gpu-check`` runs it) has one line per row and CUDA
backend of the ranking core (the torch ops and the Triton kernels, each forced), up to M = 31e6
with P = 1200: ours, the loop and the floor pass on the GPU, the peak of the CUDA allocator above
the inputs, the errors against the float64 loop reference (on the GPU), and the agreement with
ours on the CPU (its default kernels) on the same batch: ``cpu val`` and ``cpu grad``, the
relative differences of the values and gradients, as the errors are measured. Its checks are the
targets above, per backend, and that agreement within 1e-6.
"""

import argparse
import ctypes
import json
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from alrp_core import alrp_loss, rs_loss
from alrp_core.backends import available_backends, select_backend
from alrp_core.options import current_options, ranking_options

Outputs = Tuple[Tensor, Tensor, Tensor, Tensor]  # loss_cls, loss_loc, grad logits, grad errors
BIG = int(8e6)
CASES = ('early', 'late')
#: The rows (M, P) of the device table, and those of its --quick variant.
DEVICE_SIZES = [
    (int(1e5), 100),
    (int(1e6), 100),
    (int(1e6), 1000),
    (BIG, 100),
    (BIG, 1000),
    (int(31e6), 1200),
]
DEVICE_QUICK_SIZES = [(int(1e6), 1000), (int(31e6), 1200)]
#: The ranking core's backends on CUDA, each a set of lines of the device table.
DEVICE_BACKENDS = ('torch', 'triton')
#: Largest relative difference of values and gradients between a device and the CPU.
AGREEMENT = 1e-6


def loop_reference(
    logits: Tensor, targets: Tensor, errors: Tensor, delta: float = 1.0, eps: float = 1e-5
) -> Outputs:
    """aLRP Loss and its error-driven gradients, one positive at a time (O(P * M))."""
    s, t = logits.reshape(-1), targets.reshape(-1)
    pos = torch.nonzero(t == 1).squeeze(1)
    num_pos = pos.numel()
    s_pos = s[pos]
    # Negatives below every positive's window never count: keep the relevant ones only.
    neg = torch.nonzero((t == 0) & (s >= s_pos.min() - delta)).squeeze(1)
    s_neg = s[neg]
    grad_neg = torch.zeros_like(s_neg)
    grad_pos = torch.zeros_like(s_pos)
    rank = torch.empty_like(s_pos)
    loss_cls = s.new_zeros(())
    for i in range(num_pos):
        rel_neg = torch.clamp((s_neg - s_pos[i]) / (2 * delta) + 0.5, 0, 1)
        rel_pos = torch.clamp((s_pos - s_pos[i]) / (2 * delta) + 0.5, 0, 1)
        rel_pos[i] = 0
        fp = rel_neg.sum()
        rank[i] = 1 + rel_pos.sum() + fp
        loss_cls += fp / rank[i]
        if fp > eps:
            grad_pos[i] = -((rel_pos * errors).sum() + fp) / rank[i]
            grad_neg += rel_neg * (-grad_pos[i] / fp)
    grad = torch.zeros_like(s)
    grad[neg] = grad_neg / num_pos
    grad[pos] = grad_pos / num_pos
    order = torch.sort(s_pos, descending=True, stable=True).indices
    loss_loc = (torch.cumsum(errors[order], 0) / rank[order]).mean()
    grad_errors = torch.empty_like(errors)
    grad_errors[order] = (
        torch.flip(torch.cumsum(torch.flip(1 / rank[order], [0]), 0), [0]) / num_pos
    )
    return loss_cls / num_pos, loss_loc, grad, grad_errors


def ours(logits: Tensor, targets: Tensor, errors: Tensor) -> Outputs:
    x = logits.detach().requires_grad_(True)
    e = errors.detach().requires_grad_(True)
    loss_cls, loss_loc = alrp_loss(x, targets, e)
    (loss_cls + loss_loc).backward()
    return loss_cls.detach(), loss_loc.detach(), x.grad, e.grad


def floor_pass(logits: Tensor, targets: Tensor, errors: Tensor) -> Tensor:
    return torch.where(targets == 0, logits, 0)


def rs_loop_reference(
    logits: Tensor, targets: Tensor, ious: Tensor, delta: float = 0.5, eps: float = 1e-10
) -> Tuple[Tensor, Tensor, Tensor]:
    """Rank & Sort Loss (loss_rank, loss_sort) and the gradient of their sum, one positive at a
    time, each against every relevant negative and every positive (O(P * M + P^2))."""
    s, t = logits.reshape(-1), targets.reshape(-1)
    pos = torch.nonzero(t == 1).squeeze(1)
    num_pos = pos.numel()
    s_pos, y = s[pos], ious.to(s.dtype)
    neg = torch.nonzero((t == 0) & (s >= s_pos.min() - delta)).squeeze(1)
    s_neg = s[neg]

    def step(x: Tensor) -> Tensor:
        return (x >= 0).to(x.dtype) if delta == 0 else torch.clamp(x / (2 * delta) + 0.5, 0, 1)

    grad_neg, grad_pos = torch.zeros_like(s_neg), torch.zeros_like(s_pos)
    loss_rank, loss_sort = s.new_zeros(()), s.new_zeros(())
    for i in torch.argsort(s_pos).tolist():
        rel_neg, rel_pos = step(s_neg - s_pos[i]), step(s_pos - s_pos[i])  # k = i: H(0)
        fp, rank_pos = rel_neg.sum(), rel_pos.sum()
        ranking_error = fp / (rank_pos + fp)
        current = (rel_pos * (1 - y)).sum() / rank_pos
        target_rel = rel_pos * (y >= y[i])
        sorting_error = current - (target_rel * (1 - y)).sum() / target_rel.sum()
        loss_rank += ranking_error
        loss_sort += sorting_error
        if fp > eps:
            grad_pos[i] -= ranking_error
            grad_neg += rel_neg * (ranking_error / fp)
        missorted = rel_pos * (y < y[i])
        total = missorted.sum()
        if total > eps:
            grad_pos[i] -= sorting_error
            grad_pos += missorted * (sorting_error / total)
    grad = torch.zeros_like(s)
    grad[neg] = grad_neg / num_pos
    grad[pos] = grad_pos / num_pos
    return loss_rank / num_pos, loss_sort / num_pos, grad


def rs_ours(logits: Tensor, targets: Tensor, ious: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    x = logits.detach().requires_grad_(True)
    loss_rank, loss_sort = rs_loss(x, targets, ious)
    (loss_rank + loss_sort).backward()
    return loss_rank.detach(), loss_sort.detach(), x.grad


#: Per loss: ours and the loop reference, each (logits, targets, per-positive tensor) -> (two
#: values, gradients); the per-positive tensor of a batch is aLRP's localisation errors or RS's
#: IoU targets (both uniform in [0, 1)).
LOSSES = {'alrp': (ours, loop_reference), 'rs': (rs_ours, rs_loop_reference)}
#: The rows (M, P) of the CPU tables, those of --quick first.
QUICK_SIZES = [(int(1e5), 100), (int(1e5), 1000), (int(1e6), 100), (int(1e6), 1000)]
SIZES = {
    'alrp': QUICK_SIZES + [(BIG, 100), (BIG, 1000)],
    'rs': QUICK_SIZES + [(BIG, 100), (BIG, 1000), (int(2.6e6), 8000)],
}


def make_batch(
    m: int, p: int, case: str, device: str, seed: int = 0, labels: torch.dtype = torch.long
):
    """M logits with P positives and 2% ignored, labels of dtype ``labels``. 'early': every
    negative inside the positives' reach (s_j >= min_i s_i - delta); 'late': 1% of the negatives
    there."""
    gen = torch.Generator(device='cpu').manual_seed(seed)
    targets = torch.zeros(m, dtype=torch.long)
    targets[torch.rand(m, generator=gen) < 0.02] = -1
    targets[torch.randperm(m, generator=gen)[:p]] = 1
    if case == 'early':
        logits = torch.rand(m, generator=gen) * 2 - 1
    else:
        logits = torch.rand(m, generator=gen) * -9.9 - 0.1
        reach = torch.rand(m, generator=gen) < 0.01
        logits[reach] = torch.rand(int(reach.sum()), generator=gen) * 4
        pos = targets == 1
        logits[pos] = torch.rand(p, generator=gen) * 2 + 1
    errors = torch.rand(p, generator=gen)
    return logits.to(device), targets.to(device, labels), errors.to(device)


def _status(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def map_large_allocations() -> None:
    """Make glibc serve every allocation over 64 KiB by a fresh mmap (M_MMAP_THRESHOLD; setting
    it also stops glibc from raising it after frees), so that the RSS high-water mark sees each
    call's temporaries instead of heap pages reused from earlier calls."""
    try:
        ctypes.CDLL(None).mallopt(-3, 1 << 16)
    except (OSError, AttributeError):  # not glibc: the figures may then read low
        pass


def measure(fn: Callable, args, device: str):
    """(outputs, seconds, peak bytes above what was live before the call)."""
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        with open('/proc/self/clear_refs', 'w') as f:  # reset the RSS high-water mark
            f.write('5')
        base = _status('VmRSS')
    start = time.perf_counter()
    out = fn(*args)
    if device == 'cuda':
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() if device == 'cuda' else _status('VmHWM')) - base
    return out, seconds, peak


def best_of(fn: Callable, args, device: str, repeat: int):
    """(outputs, best seconds, largest peak bytes) over ``repeat`` runs."""
    best, peak = float('inf'), 0
    for _ in range(repeat):
        out, seconds, used = measure(fn, args, device)
        best, peak = min(best, seconds), max(peak, used)
    return out, best, peak


def relative_errors(got: Outputs, ref: Outputs) -> Tuple[float, float]:
    vals = max(
        abs(float(g) - float(r)) / max(abs(float(r)), 1e-30) for g, r in zip(got[:2], ref[:2])
    )
    grads = max(
        float((g.double() - r.double()).abs().max() / r.double().abs().max().clamp_min(1e-30))
        for g, r in zip(got[2:], ref[2:])
    )
    return vals, grads


def pass_seconds(args, device: str, repeat: int, loss: str = 'alrp') -> Dict[str, float]:
    """Wall seconds of ours per pass of the ranking core, and the rest: each the least over
    ``repeat`` calls."""
    best: Dict[str, float] = {}
    for _ in range(repeat):
        passes: Dict[str, float] = {}
        with ranking_options(pass_seconds=passes):
            _, seconds, _ = measure(LOSSES[loss][0], args, device)
        passes['rest'] = seconds - sum(passes.values())
        best = {name: min(value, best.get(name, value)) for name, value in passes.items()}
    return best


def run_case(
    m: int,
    p: int,
    case: str,
    device: str,
    repeat: int,
    labels: torch.dtype = torch.long,
    passes: bool = False,
    loss: str = 'alrp',
) -> Dict[str, float]:
    """One row of the CPU table of ``loss`` ('alrp' or 'rs')."""
    fn, loop = LOSSES[loss]
    logits, targets, errors = make_batch(m, p, case, device, labels=labels)
    warm_up(logits, targets, errors, device, loss)
    got, seconds, peak = best_of(fn, (logits, targets, errors), device, repeat)
    # Right after ours' timed runs, before the loop's allocations change the heap.
    per_pass = pass_seconds((logits, targets, errors), device, repeat, loss) if passes else None
    _, floor_seconds, _ = best_of(floor_pass, (logits, targets, errors), device, repeat)
    _, loop_seconds, _ = measure(loop, (logits, targets, errors), device)
    if loop_seconds < 1:
        _, loop_seconds, _ = best_of(loop, (logits, targets, errors), device, repeat)
    ref64 = loop(logits.double(), targets, errors.double())
    val_err, grad_err = relative_errors(got, ref64)
    return dict(
        ours_ms=seconds * 1e3,
        loop_ms=loop_seconds * 1e3,
        floor_ms=floor_seconds * 1e3,
        speedup=loop_seconds / seconds,
        over_floor=seconds / floor_seconds,
        bytes_per_logit=peak / m,
        val_err=val_err,
        grad_err=grad_err,
        passes=per_pass,
    )


def warm_up(
    logits: Tensor, targets: Tensor, errors: Tensor, device: str, loss: str = 'alrp'
) -> None:
    """Imports, CUDA context and Triton compilation out of the timing."""
    if device == 'cpu':
        logits, targets = logits[:1000], targets[:1000]
        errors = errors[: int((targets == 1).sum())]
    LOSSES[loss][0](logits, targets, errors)


def cpu_peak_bytes(rows: List[Tuple[str, int, int]], argv: List[str]) -> Dict[tuple, int]:
    """Peak extra bytes of ours per row, measured in a child process whose glibc maps every
    large allocation afresh (:func:`map_large_allocations`): that setting makes each allocation
    fault its pages in, so the timed runs of this process keep glibc's default."""
    out = subprocess.run(
        [sys.executable, __file__, *argv, '--memory-only'],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    peaks = json.loads(out.strip().splitlines()[-1])
    return {
        (loss, m, p, case): peaks[f'{loss} {m} {p} {case}'] for loss, m, p in rows for case in CASES
    }


def memory_only(rows: List[Tuple[str, int, int]], repeat: int, labels: torch.dtype) -> None:
    """The child of :func:`cpu_peak_bytes`: prints one JSON line of peaks, per (loss, M, P)."""
    map_large_allocations()
    peaks = {}
    for loss, m, p in rows:
        for case in CASES:
            batch = make_batch(m, p, case, 'cpu', labels=labels)
            warm_up(*batch, 'cpu', loss)
            peaks[f'{loss} {m} {p} {case}'] = best_of(LOSSES[loss][0], batch, 'cpu', repeat)[2]
    print(json.dumps(peaks))


def targets_met(results: Dict[tuple, Dict[str, float]], device: str) -> List[Tuple[str, bool]]:
    """(text, ok) for each target of the issue that the table covers."""
    checks = []
    slowest = min(results.items(), key=lambda kv: kv[1]['speedup'])
    checks.append(
        (
            f'never slower than the loop: lowest speed-up {slowest[1]["speedup"]:.1f}x '
            f'(M={slowest[0][0]:.0e}, P={slowest[0][1]}, {slowest[0][2]}) >= 1x',
            slowest[1]['speedup'] >= 1,
        )
    )
    worst = max(max(r['val_err'], r['grad_err']) for r in results.values())
    checks.append(
        (
            f'values and gradients within 1e-5 of the float64 reference on every row: '
            f'max {worst:.1e}',
            worst <= 1e-5,
        )
    )
    for case, want in (('early', 300), ('late', 10)):
        r = results.get((BIG, 1000, case))
        if r and device == 'cpu':  # the speed-ups over the loop set for the CPU table
            checks.append(
                (
                    f'M=8e6 P=1000 {case}: {r["speedup"]:.1f}x the loop >= {want}x',
                    r['speedup'] >= want,
                )
            )
    for p in (100, 1000):
        for case in ('early', 'late'):
            r = results.get((BIG, p, case))
            if r:
                checks.append(
                    (
                        f'M=8e6 P={p} {case}: {r["over_floor"]:.1f}x the floor pass <= 8x',
                        r['over_floor'] <= 8,
                    )
                )
    big = {k: r for k, r in results.items() if k[0] >= 1e6}
    if big:
        most = max(r['bytes_per_logit'] for r in big.values())
        checks.append((f'extra memory {most:.1f} B/logit <= 16 (rows with M >= 1e6)', most <= 16))
    for case in ('early', 'late'):
        r = results.get((int(31e6), 1200, case))
        if r:
            checks.append(
                (f'CUDA M=31e6 P=1200 {case}: {r["ours_ms"]:.2f} ms <= 1 ms', r['ours_ms'] <= 1)
            )
            checks.append(
                (
                    f'CUDA M=31e6 P=1200 {case}: {r["over_floor"]:.1f}x the floor pass <= 8x',
                    r['over_floor'] <= 8,
                )
            )
    return checks


def rs_targets_met(results: Dict[tuple, Dict[str, float]]) -> List[Tuple[str, bool]]:
    """(text, ok) for each target of Rank & Sort Loss's CPU table (issue 23) that the table
    covers: aLRP's (never slower than the loop, within 1e-5 of float64, M = 8e6 with P = 1000
    300x and 10x the loop, <= 8x the floor pass at M = 8e6, <= 16 B/logit), and at M = 2.6e6
    with P = 8000 <= 8x the floor pass and >= 100x the loop."""
    checks = targets_met(results, 'cpu')
    for case in CASES:
        r = results.get((int(2.6e6), 8000, case))
        if r:
            checks.append(
                (
                    f'M=2.6e6 P=8000 {case}: {r["over_floor"]:.1f}x the floor pass <= 8x',
                    r['over_floor'] <= 8,
                )
            )
            checks.append(
                (
                    f'M=2.6e6 P=8000 {case}: {r["speedup"]:.1f}x the loop >= 100x',
                    r['speedup'] >= 100,
                )
            )
    return checks


def device_row(
    m: int,
    p: int,
    case: str,
    device: str,
    backends: List[str],
    repeat: int,
    labels: torch.dtype = torch.long,
) -> Dict[str, Dict[str, float]]:
    """One row of the device table: per backend, ours' milliseconds, peak bytes per logit and
    errors against the float64 loop reference, its agreement with ours on the CPU (``cpu_val``,
    ``cpu_grad``), and the loop's and the floor pass's milliseconds (one batch for all)."""
    logits, targets, errors = make_batch(m, p, case, device, labels=labels)
    with ranking_options(backend='auto'):
        on_cpu = ours(logits.cpu(), targets.cpu(), errors.cpu())
    ref64 = loop_reference(logits.double(), targets, errors.double())
    row = {}
    for name in backends:
        with ranking_options(backend=name):
            warm_up(logits, targets, errors, device)
            got, seconds, peak = best_of(ours, (logits, targets, errors), device, repeat)
        val_err, grad_err = relative_errors(got, ref64)
        cpu_val, cpu_grad = relative_errors(tuple(t.cpu() for t in got), on_cpu)
        row[name] = dict(
            ours_ms=seconds * 1e3,
            bytes_per_logit=peak / m,
            val_err=val_err,
            grad_err=grad_err,
            cpu_val=cpu_val,
            cpu_grad=cpu_grad,
        )
    _, floor_seconds, _ = best_of(floor_pass, (logits, targets, errors), device, repeat)
    _, loop_seconds, _ = measure(loop_reference, (logits, targets, errors), device)
    if loop_seconds < 1:
        _, loop_seconds, _ = best_of(loop_reference, (logits, targets, errors), device, 3)
    for r in row.values():
        r.update(
            loop_ms=loop_seconds * 1e3,
            floor_ms=floor_seconds * 1e3,
            speedup=loop_seconds / (r['ours_ms'] / 1e3),
            over_floor=r['ours_ms'] / 1e3 / floor_seconds,
        )
    return row


DEVICE_HEAD = (
    f'{"M":>7} {"P":>5} {"case":5} {"backend":7} {"ours ms":>8} {"loop ms":>8} {"loop/ours":>9} '
    f'{"floor ms":>8} {"ours/floor":>10} {"B/logit":>7} {"val err":>8} {"grad err":>8} '
    f'{"cpu val":>8} {"cpu grad":>8}'
)


def device_line(key: Tuple[int, int, str], backend: str, r: Dict[str, float]) -> str:
    m, p, case = key
    return (
        f'{m:>7.0e} {p:>5} {case:5} {backend:7} {r["ours_ms"]:>8.2f} {r["loop_ms"]:>8.0f} '
        f'{r["speedup"]:>8.1f}x {r["floor_ms"]:>8.2f} {r["over_floor"]:>9.1f}x '
        f'{r["bytes_per_logit"]:>7.1f} {r["val_err"]:>8.1e} {r["grad_err"]:>8.1e} '
        f'{r["cpu_val"]:>8.1e} {r["cpu_grad"]:>8.1e}'
    )


def device_table(
    sizes: List[Tuple[int, int]],
    device: str,
    backends: List[str],
    repeat: int,
    labels: torch.dtype = torch.long,
    deadline: Optional[float] = None,
    out: Callable[[str], None] = print,
):
    """The device table, printed line by line through ``out``: returns ``{backend: {(M, P,
    case): row}}`` and the rows left out because ``time.monotonic()`` had passed ``deadline``."""
    results: Dict[str, Dict[tuple, Dict[str, float]]] = {name: {} for name in backends}
    left_out = []
    out(DEVICE_HEAD)
    out('-' * len(DEVICE_HEAD))
    for m, p in sizes:
        for case in CASES:
            key = (m, p, case)
            if deadline is not None and time.monotonic() > deadline:
                left_out.append(key)
                continue
            for name, r in device_row(m, p, case, device, backends, repeat, labels).items():
                results[name][key] = r
                out(device_line(key, name, r))
    return results, left_out


def device_checks(results: Dict[str, Dict[tuple, Dict[str, float]]]) -> List[Tuple[str, bool]]:
    """(text, ok) per backend: the targets of :func:`targets_met` and the agreement with the
    CPU."""
    checks = []
    for name, rows in results.items():
        if not rows:
            continue
        checks += [(f'{name}: {text}', ok) for text, ok in targets_met(rows, 'cuda')]
        most = max(max(r['cpu_val'], r['cpu_grad']) for r in rows.values())
        checks.append(
            (
                f'{name}: values and gradients within {AGREEMENT:.0e} of the CPU on every row: '
                f'max {most:.1e}',
                most <= AGREEMENT,
            )
        )
    return checks


def device_main(args) -> int:
    """``--device cuda``: the device table and its checks."""
    device = torch.device(args.device)
    backends = [b for b in DEVICE_BACKENDS if b in available_backends(device)]
    print(
        f'torch {torch.__version__}, {torch.cuda.get_device_name()}, backends {backends}, '
        f'CPU side {select_backend(torch.device("cpu")).name!r}, {args.labels} labels'
    )
    sizes = DEVICE_QUICK_SIZES if args.quick else DEVICE_SIZES
    results, _ = device_table(
        sizes, args.device, backends, args.repeat, getattr(torch, args.labels)
    )
    checks = device_checks(results)
    print()
    for text, ok in checks:
        print(f'{"PASS" if ok else "FAIL"}  {text}')
    return 0 if all(ok for _, ok in checks) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='small sizes only')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--threads', type=int, default=2, help='CPU threads (targets: 2)')
    parser.add_argument(
        '--repeat', type=int, default=10, help='timed runs of ours and the floor pass (best)'
    )
    parser.add_argument(
        '--backend',
        default=current_options().backend,
        choices=['auto', 'cpp', 'triton', 'torch'],
        help='ranking core kernels',
    )
    parser.add_argument(
        '--labels',
        default='int64',
        choices=['int64', 'int8'],
        help="label dtype (the issue's table: int64; the heads pass int8)",
    )
    parser.add_argument(
        '--passes',
        action='store_true',
        help='also the milliseconds per pass of ours (least of --repeat calls each)',
    )
    parser.add_argument(
        '--loss',
        default='all',
        choices=['all', 'alrp', 'rs'],
        help='the tables: aLRP Loss, Rank & Sort Loss, or both',
    )
    parser.add_argument('--memory-only', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(True)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no GPU visible to torch')
    with ranking_options(backend=args.backend):
        return run(args, argv)


def run(args, argv) -> int:
    """The tables of ``args`` and their checks (the backend option set)."""
    device = args.device
    if device == 'cuda':
        return device_main(args)
    losses = list(LOSSES) if args.loss == 'all' else [args.loss]
    rows = [
        (loss, m, p) for loss in losses for m, p in (QUICK_SIZES if args.quick else SIZES[loss])
    ]
    labels = getattr(torch, args.labels)
    if args.memory_only:
        memory_only(rows, args.repeat, labels)
        return 0
    backend = select_backend(torch.device(device)).name
    print(
        f'torch {torch.__version__}, {torch.get_num_threads()} CPU threads, ranking core '
        f'backend {backend!r}, {args.labels} labels'
    )
    child_argv = sys.argv[1:] if argv is None else list(argv)
    peaks = cpu_peak_bytes(rows, child_argv)
    passed = True
    for loss in losses:
        results = {}
        print(f'\n{TITLES[loss]}')
        print(CPU_HEAD)
        print('-' * len(CPU_HEAD))
        for _, m, p in (row for row in rows if row[0] == loss):
            for case in CASES:
                r = run_case(m, p, case, device, args.repeat, labels, args.passes, loss)
                r['bytes_per_logit'] = peaks[loss, m, p, case] / m
                results[m, p, case] = r
                print(cpu_line((m, p, case), r), flush=True)
                if r['passes']:
                    print(
                        '    passes (ms, least of the calls): '
                        + ', '.join(
                            f'{name} {seconds * 1e3:.2f}' for name, seconds in r['passes'].items()
                        )
                    )
        checks = targets_met(results, device) if loss == 'alrp' else rs_targets_met(results)
        print()
        for text, ok in checks:
            print(f'{"PASS" if ok else "FAIL"}  {text}')
        passed = passed and all(ok for _, ok in checks)
    return 0 if passed else 1


TITLES = {
    'alrp': 'aLRP Loss (delta 1, eps 1e-5)',
    'rs': 'Rank & Sort Loss (delta 0.5, eps 1e-10; values: loss_rank, loss_sort)',
}
CPU_HEAD = (
    f'{"M":>7} {"P":>5} {"case":5} {"ours ms":>9} {"loop ms":>9} {"loop/ours":>9} '
    f'{"floor ms":>9} {"ours/floor":>10} {"B/logit":>8} {"val err":>8} {"grad err":>8}'
)


def cpu_line(key: Tuple[int, int, str], r: Dict[str, float]) -> str:
    m, p, case = key
    return (
        f'{m:>7.0e} {p:>5} {case:5} {r["ours_ms"]:>9.2f} {r["loop_ms"]:>9.0f} '
        f'{r["speedup"]:>8.1f}x {r["floor_ms"]:>9.2f} {r["over_floor"]:>9.1f}x '
        f'{r["bytes_per_logit"]:>8.1f} {r["val_err"]:>8.1e} {r["grad_err"]:>8.1e}'
    )


if __name__ == '__main__':
    sys.exit(main())

"""Speed, memory and accuracy of our aLRP Loss against a per-positive loop reference.

The reference follows the paper's equations the way the public code computes them: a Python loop
over the P positives, each ranked against every relevant negative (O(P * M)). Both run in the same
process, on the same inputs; accuracy is measured against the reference run in float64.

    python tools/benchmark_loss.py            # the full table (several minutes on 2 CPU cores)
    python tools/benchmark_loss.py --quick    # small sizes only

Columns: forward + backward time (best of --repeat for ours, one run for the reference), peak
extra memory per logit (RSS high-water mark above the inputs on CPU, allocator peak on CUDA), the
speed-up, and the maximum relative error of ours vs the float64 reference: for the two loss values
|ours - ref| / |ref|, for the gradients max |ours - ref| / max |ref|.
"""
import argparse
import sys
import time
from typing import Dict, Tuple

import torch
from torch import Tensor

from mmdet_alrp.models.losses import alrp_loss

Outputs = Tuple[Tensor, Tensor, Tensor, Tensor]  # loss_cls, loss_loc, grad logits, grad errors


def loop_reference(logits: Tensor, targets: Tensor, errors: Tensor, delta: float = 1.0,
                   eps: float = 1e-5) -> Outputs:
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
    grad_errors[order] = torch.flip(torch.cumsum(torch.flip(1 / rank[order], [0]), 0),
                                    [0]) / num_pos
    return loss_cls / num_pos, loss_loc, grad, grad_errors


def ours(logits: Tensor, targets: Tensor, errors: Tensor) -> Outputs:
    x = logits.detach().requires_grad_(True)
    e = errors.detach().requires_grad_(True)
    loss_cls, loss_loc = alrp_loss(x, targets, e)
    (loss_cls + loss_loc).backward()
    return loss_cls.detach(), loss_loc.detach(), x.grad, e.grad


def make_batch(m: int, p: int, case: str, device: str, seed: int = 0):
    """M logits with P positives and 2% ignored. 'early': every negative inside the positives'
    reach (s_j >= min_i s_i - delta); 'late': 1% of the negatives there."""
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
    return logits.to(device), targets.to(device), errors.to(device)


def _status(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def measure(fn, args, device: str) -> Tuple[Outputs, float, int]:
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


def relative_errors(got: Outputs, ref: Outputs) -> Tuple[float, float]:
    vals = max(abs(float(g) - float(r)) / max(abs(float(r)), 1e-30)
               for g, r in zip(got[:2], ref[:2]))
    grads = max(float((g.double() - r.double()).abs().max() / r.double().abs().max().clamp_min(1e-30))
                for g, r in zip(got[2:], ref[2:]))
    return vals, grads


def run_case(m: int, p: int, case: str, device: str, repeat: int) -> Dict[str, float]:
    logits, targets, errors = make_batch(m, p, case, device)
    ours(logits[:1000], targets[:1000], errors[:int((targets[:1000] == 1).sum())])  # warm-up
    best, peak = float('inf'), 0
    for _ in range(repeat):
        got, seconds, used = measure(ours, (logits, targets, errors), device)
        best, peak = min(best, seconds), max(peak, used)
    _, ref_seconds, ref_peak = measure(loop_reference, (logits, targets, errors), device)
    ref64 = loop_reference(logits.double(), targets, errors.double())
    val_err, grad_err = relative_errors(got, ref64)
    return dict(ours_ms=best * 1e3, ref_ms=ref_seconds * 1e3, speedup=ref_seconds / best,
                ours_bpl=peak / m, ref_bpl=ref_peak / m, val_err=val_err, grad_err=grad_err)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='small sizes only')
    parser.add_argument('--repeat', type=int, default=3, help='timed runs of ours')
    args = parser.parse_args(argv)
    torch.set_grad_enabled(True)
    sizes = [(int(1e5), 100), (int(1e5), 1000), (int(1e6), 100), (int(1e6), 1000)]
    if not args.quick:
        sizes += [(int(8e6), 100), (int(8e6), 1000)]
    cases = [('cpu', m, p, c) for m, p in sizes for c in ('early', 'late')]
    if torch.cuda.is_available() and not args.quick:
        cases += [('cuda', int(31e6), 1200, c) for c in ('early', 'late')]
    print(f'torch {torch.__version__}, {torch.get_num_threads()} CPU threads'
          + (f', {torch.cuda.get_device_name()}' if torch.cuda.is_available() else ''))
    head = (f"{'device':6} {'M':>9} {'P':>5} {'case':5} {'ours ms':>9} {'loop ms':>10} "
            f"{'speed-up':>8} {'ours B/logit':>12} {'loop B/logit':>12} {'val err':>8} "
            f"{'grad err':>8}")
    print(head)
    print('-' * len(head))
    results = {}
    for device, m, p, case in cases:
        r = run_case(m, p, case, device, args.repeat)
        results[device, m, p, case] = r
        print(f"{device:6} {m:>9.0e} {p:>5} {case:5} {r['ours_ms']:>9.1f} {r['ref_ms']:>10.0f} "
              f"{r['speedup']:>7.0f}x {r['ours_bpl']:>12.1f} {r['ref_bpl']:>12.1f} "
              f"{r['val_err']:>8.1e} {r['grad_err']:>8.1e}", flush=True)
    checks = [('max relative error <= 1e-5 (values and gradients, every row)',
               all(max(r['val_err'], r['grad_err']) <= 1e-5 for r in results.values()))]
    key = ('cpu', int(8e6), 1000, 'early')
    if key in results:
        r = results[key]
        checks += [(f"CPU M=8e6 P=1000 early: speed-up {r['speedup']:.0f}x >= 50x",
                    r['speedup'] >= 50),
                   (f"CPU M=8e6 P=1000 early: {r['ours_bpl']:.1f} B/logit <= 48",
                    r['ours_bpl'] <= 48)]
    for case in ('early', 'late'):
        key = ('cuda', int(31e6), 1200, case)
        if key in results:
            ms = results[key]['ours_ms']
            checks.append((f'CUDA M=31e6 P=1200 {case}: {ms:.1f} ms <= 15 ms', ms <= 15))
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == '__main__':
    sys.exit(main())

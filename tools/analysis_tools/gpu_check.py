"""The GPU check: one command on a GPU machine that says whether the ranking core's CUDA paths
are sound there and which kernels ``'auto'`` should take on CUDA (``CUDA_AUTO`` in
``alrp_core/backends/__init__.py``). docs/gpu_check.md explains how to run it and read its report.

    make gpu-check                                   # python3 tools/analysis_tools/gpu_check.py
    make gpu-check GPU_CHECK_ARGS=--quick            # under 3 min: fewer tests and rows

It needs only a CUDA torch (triton for the Triton rows), numpy, pytest and hypothesis: no mmdet,
mmcv or mmengine, no install step and no download. It uses the torch-only core of this working
tree. Its stages, each written to the report as it ends (a check cut short leaves what it got):

1. the environment (Python, torch, CUDA, the GPU, triton, the test packages);
2. the C++ CPU op: imported where built for this Python and torch, else built in place
   (``setup.py build_ext --inplace``) where a C++ compiler is there; without it the C++ tests
   skip and the CPU side of the agreement runs the torch ops (``--quick`` does not build);
3. ``tests/test_core`` with the CUDA tests on (``--quick``: the tests named ``cuda`` only);
4. the device table of ``benchmark_loss.py`` (ours per CUDA backend, the loop, the floor
   pass, the allocator's peak, the errors against float64 and the CPU-vs-CUDA agreement), rows
   up to M = 31e6 with P = 1200 (``--quick``: M = 1e6 and 31e6), within the time left;
5. the verdict on the default (:func:`verdict`).

Exit status 0 when every stage ran and the CUDA torch ops (the default) passed, whatever the
verdict on Triton; 1 otherwise; 2 without a GPU.
"""

import argparse
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[2]

#: Seconds for the whole check (after Python's start), by variant: the last row may overrun it
#: by its own time (about 20 s at M = 31e6).
BUDGET = {'full': 400, 'quick': 150}
#: Seconds of the budget kept for the device table when the tests start.
TABLE_SECONDS = {'full': 150, 'quick': 45}
#: Seconds the in-place build of the C++ op may take.
BUILD_SECONDS = 180
#: Timed runs per backend and row (best of).
REPEAT = {'full': 10, 'quick': 5}
#: Largest error against the float64 loop reference (the core's accuracy target).
ACCURACY = 1e-5


@dataclass
class TestRun:
    """The outcome of the pytest stage."""

    returncode: Optional[int]  # None: cut off at its time limit
    summary: str
    failed: List[str] = field(default_factory=list)
    cuda_skipped: bool = False  # the CUDA tests skipped ('needs CUDA')

    @property
    def triton_failures(self) -> List[str]:
        return [name for name in self.failed if 'triton' in name]

    @property
    def other_failures(self) -> List[str]:
        return [name for name in self.failed if 'triton' not in name]


@dataclass
class Verdict:
    """``backend``: what ``CUDA_AUTO`` should be; ``reasons``: why not Triton (empty when it is);
    ``default_sound``: the CUDA torch ops passed the tests and every row of the table."""

    backend: str
    reasons: List[str]
    default_sound: bool
    problems: List[str]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--quick', action='store_true', help='under 3 minutes: the CUDA tests and two sizes'
    )
    parser.add_argument(
        '--report',
        default='gpu_check_report.txt',
        help='the report file (default: gpu_check_report.txt in the current directory)',
    )
    return parser.parse_args(argv)


class Report:
    """The report file, rewritten whole after each stage; also printed as it grows."""

    def __init__(self, path: Path, title: str) -> None:
        self.path = path
        self.lines = [title]

    def section(self, name: str) -> None:
        self.add('', f'== {name}')

    def add(self, *lines: str) -> None:
        for line in lines:
            print(line, flush=True)
        self.lines.extend(lines)

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text('\n'.join(self.lines) + '\n')


def environment() -> List[str]:
    import torch

    lines = [
        f'Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}',
        f'torch {torch.__version__} (CUDA {torch.version.cuda})',
    ]
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        lines.append(
            f'GPU {props.name}, {props.total_memory / 2**30:.0f} GiB, compute capability '
            f'{props.major}.{props.minor}, {props.multi_processor_count} SMs'
        )
    for name in ('triton', 'numpy', 'pytest', 'hypothesis'):
        lines.append(f'{name} {package_version(name)}')
    return lines


def package_version(name: str) -> str:
    if importlib.util.find_spec(name) is None:
        return 'missing'
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return 'present (version unknown)'


def child_env() -> Dict[str, str]:
    """The environment of the stages' child processes: this tree first on the path, and no
    interpreter for Triton (its kernels compiled for the GPU)."""
    paths = [str(ROOT)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    env.pop('TRITON_INTERPRET', None)
    return env


def cpp_op_imports() -> bool:
    run = subprocess.run(
        [sys.executable, '-c', 'import alrp_core._ranking_cpu'],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        timeout=120,
    )
    return run.returncode == 0


def cpp_op(build: bool) -> List[str]:
    """Report lines on the C++ op, built in place where it is missing and ``build`` is set."""
    if cpp_op_imports():
        return ['C++ op: present (built for this Python and torch)']
    skipped = 'the C++ tests skip and the CPU side of the agreement runs the torch ops'
    if not build:
        return [f'C++ op: absent, not built (--quick): {skipped}']
    compiler = shutil.which(os.environ.get('CXX', 'c++')) or shutil.which('g++')
    if compiler is None:
        return [f'C++ op: absent and no C++ compiler: {skipped}']
    start = time.monotonic()
    try:
        run = subprocess.run(
            [sys.executable, 'setup.py', 'build_ext', '--inplace'],
            cwd=ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=BUILD_SECONDS,
        )
    except subprocess.TimeoutExpired:
        return [f'C++ op: build cut off after {BUILD_SECONDS} s: {skipped}']
    seconds = time.monotonic() - start
    if run.returncode == 0 and cpp_op_imports():
        return [f'C++ op: built in place with {compiler} in {seconds:.0f} s']
    tail = (run.stdout + run.stderr).strip().splitlines()[-15:]
    return [f'C++ op: build failed ({seconds:.0f} s): {skipped}', *('  ' + t for t in tail)]


def pytest_command(quick: bool) -> List[str]:
    command = [sys.executable, '-m', 'pytest', 'tests/test_core', '-p', 'no:cacheprovider']
    command += ['-o', 'addopts=', '-q', '-rfEs']
    return command + (['-k', 'cuda'] if quick else [])


def run_tests(quick: bool, timeout: float) -> TestRun:
    try:
        run = subprocess.run(
            pytest_command(quick),
            cwd=ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=max(timeout, 1),
        )
    except subprocess.TimeoutExpired as cut:
        output = cut.stdout.decode() if isinstance(cut.stdout, bytes) else cut.stdout or ''
        last = output.strip().splitlines()[-1:] or ['no output']
        summary = f'cut off after {timeout:.0f} s (last output: {last[0][:120]})'
        return TestRun(None, summary, failed_tests(output))
    return read_test_output(run.returncode, run.stdout + run.stderr)


def failed_tests(output: str) -> List[str]:
    return [
        line.split()[1] for line in output.splitlines() if line.startswith(('FAILED ', 'ERROR '))
    ]


def read_test_output(returncode: int, output: str) -> TestRun:
    """The summary line, the failures and whether the CUDA tests skipped, from pytest's output
    (run with ``-q -rfEs``)."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    summary = lines[-1].strip('= ') if lines else 'no output'
    cuda_skipped = any(line.startswith('SKIPPED') and 'needs CUDA' in line for line in lines)
    return TestRun(returncode, summary, failed_tests(output), cuda_skipped)


def verdict(
    tests: TestRun,
    results: Dict[str, Dict[tuple, Dict[str, float]]],
    left_out: List[tuple],
) -> Verdict:
    """Triton becomes the CUDA default only where the tests passed, every row of the table ran,
    and on every row the Triton kernels are as accurate as the core's target, agree with the CPU
    (hence with the torch ops) and are faster than the torch ops at M >= 1e6 (the sizes a
    detector trains with). The torch ops, the default, are sound when no test outside the Triton
    ones failed and each of their rows is accurate and agrees with the CPU."""
    agreement = load_benchmark().AGREEMENT
    problems = []
    if tests.returncode is None:
        problems.append('the tests did not finish in their time')
    elif tests.cuda_skipped:
        problems.append('the CUDA tests skipped (no GPU seen by pytest)')
    elif tests.other_failures:
        problems.append(f'tests outside the Triton ones failed ({len(tests.other_failures)})')
    elif tests.returncode != 0 and not tests.triton_failures:
        problems.append(f'pytest exited {tests.returncode}: {tests.summary}')
    if left_out:
        problems.append(f'rows of the table left out for time ({len(left_out)})')
    problems += row_problems('torch', results.get('torch', {}), agreement)
    reasons = list(problems)
    if tests.triton_failures:
        reasons.append(f'Triton tests failed ({len(tests.triton_failures)})')
    triton, torch_ops = results.get('triton', {}), results.get('torch', {})
    if not triton:
        reasons.append('no Triton rows (triton >= 3.0 missing)')
    reasons += row_problems('triton', triton, agreement)
    slower = [
        key
        for key, r in triton.items()
        if key[0] >= 1e6 and key in torch_ops and r['ours_ms'] >= torch_ops[key]['ours_ms']
    ]
    if slower:
        reasons.append(
            'triton not faster than the torch ops at '
            + ', '.join(f'M={m:.0e} P={p} {case}' for m, p, case in slower)
        )
    return Verdict('torch' if reasons else 'triton', reasons, not problems, problems)


def row_problems(name: str, rows: Dict[tuple, Dict[str, float]], agreement: float) -> List[str]:
    problems = []
    for (m, p, case), r in rows.items():
        where = f'{name} M={m:.0e} P={p} {case}'
        if max(r['val_err'], r['grad_err']) > ACCURACY:
            problems.append(f'{where}: error {max(r["val_err"], r["grad_err"]):.1e} > {ACCURACY}')
        if max(r['cpu_val'], r['cpu_grad']) > agreement:
            problems.append(
                f'{where}: differs from the CPU by {max(r["cpu_val"], r["cpu_grad"]):.1e}'
            )
    return problems


def verdict_lines(v: Verdict) -> List[str]:
    if v.backend == 'triton':
        lines = [
            "VERDICT: set CUDA_AUTO = 'triton' in alrp_core/backends/__init__.py: the Triton "
            'kernels passed the CUDA tests, agree with the CPU and the torch ops on every row and '
            'are faster.'
        ]
    else:
        lines = ["VERDICT: keep CUDA_AUTO = 'torch' in alrp_core/backends/__init__.py, because:"]
        lines += [f'  - {reason}' for reason in v.reasons]
    if v.default_sound:
        lines.append('The CUDA torch ops (the default) passed the tests and every row.')
    else:
        lines.append('WARNING: the CUDA torch ops (the default) are not shown sound here:')
        lines += [f'  - {problem}' for problem in v.problems]
    return lines


def load_benchmark():
    """benchmark_loss.py beside this script as the module ``benchmark_loss`` (this tree's
    alrp_core)."""
    for path in (str(ROOT), str(Path(__file__).resolve().parent)):
        if path not in sys.path:
            sys.path.insert(0, path)
    import benchmark_loss

    return benchmark_loss


def main(argv=None) -> int:
    args = parse_args(argv)
    variant = 'quick' if args.quick else 'full'
    start = time.monotonic()
    deadline = start + BUDGET[variant]
    import torch

    if not torch.cuda.is_available():
        print('gpu_check: no GPU visible to torch (torch.cuda.is_available() is False)')
        return 2
    stamp = datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    report = Report(Path(args.report), f'mmdet_alrp GPU check ({variant}), {stamp}')
    report.section('Environment')
    report.add(*environment())
    report.write()

    report.section('C++ CPU op')
    report.add(*cpp_op(build=not args.quick))
    report.write()

    report.section(f'Tests: {" ".join(pytest_command(args.quick)[1:])}')
    timeout = deadline - TABLE_SECONDS[variant] - time.monotonic()
    tests = run_tests(args.quick, timeout)
    report.add(f'exit {tests.returncode}: {tests.summary}')
    report.add(*(f'  failed: {name}' for name in tests.failed))
    report.write()

    report.section('Device table (tools/analysis_tools/benchmark_loss.py --device cuda)')
    bench = load_benchmark()
    torch.set_num_threads(os.cpu_count() or 1)
    backends = [
        b for b in bench.DEVICE_BACKENDS if b in bench.available_backends(torch.device('cuda'))
    ]
    report.add(
        f'backends {backends}; CPU side of the agreement: '
        f'{bench.select_backend(torch.device("cpu")).name!r}'
    )
    sizes = bench.DEVICE_QUICK_SIZES if args.quick else bench.DEVICE_SIZES
    results, left_out = bench.device_table(
        sizes, 'cuda', backends, REPEAT[variant], deadline=deadline, out=report.add
    )
    report.add(*(f'left out (time): M={m:.0e} P={p} {case}' for m, p, case in left_out))
    report.add('', *(f'{"PASS" if ok else "FAIL"}  {t}' for t, ok in bench.device_checks(results)))
    report.write()

    report.section('Verdict on the CUDA default')
    v = verdict(tests, results, left_out)
    report.add(*verdict_lines(v))
    report.add(f'({time.monotonic() - start:.0f} s; report: {args.report})')
    report.write()
    return 0 if v.default_sound else 1


if __name__ == '__main__':
    sys.exit(main())

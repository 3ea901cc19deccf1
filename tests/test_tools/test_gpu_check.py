"""tools/analysis_tools/gpu_check.py without a GPU: its arguments, the make target, the stages'
CPU-side code (the C++ op stage's choices, pytest's output read back, the report file), the device
table of tools/analysis_tools/benchmark_loss.py on CPU with tiny sizes, and the verdict on the
CUDA default."""

import re
from pathlib import Path

import pytest
import torch

from alrp_core.backends import available_backends
from alrp_core.options import current_options
from tests.tool_loader import load_tool

ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device('cpu')


@pytest.fixture(scope='module')
def check():
    return load_tool('gpu_check')


@pytest.fixture(scope='module')
def bench():
    return load_tool('benchmark_loss')


def test_arguments(check):
    args = check.parse_args([])
    assert not args.quick and args.report == 'gpu_check_report.txt'
    args = check.parse_args(['--quick', '--report', '/tmp/out/r.txt'])
    assert args.quick and args.report == '/tmp/out/r.txt'


def test_make_target_runs_the_script_without_installing():
    text = (ROOT / 'Makefile').read_text()
    prerequisites, recipe = re.search(r'^gpu-check:(.*)\n\t(.*)$', text, re.M).groups()
    assert prerequisites.strip() == '' and 'tools/analysis_tools/gpu_check.py' in recipe
    assert 'install' not in recipe


def test_the_variants_fit_their_times(check, bench):
    # The whole check: under 8 minutes (full) and 3 (quick), with the last row's overrun.
    assert check.BUDGET['full'] + 40 <= 8 * 60 and check.BUDGET['quick'] + 25 <= 3 * 60
    assert all(0 < check.TABLE_SECONDS[v] < check.BUDGET[v] for v in ('full', 'quick'))
    assert max(m for m, _ in bench.DEVICE_QUICK_SIZES) == int(31e6)
    assert (int(31e6), 1200) in bench.DEVICE_SIZES


def test_pytest_command(check):
    full, quick = check.pytest_command(False), check.pytest_command(True)
    assert full[1:4] == ['-m', 'pytest', 'tests/test_core'] and '-k' not in full
    assert quick[-2:] == ['-k', 'cuda']


def test_the_environment_of_the_children(check, monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    env = check.child_env()
    assert 'TRITON_INTERPRET' not in env
    assert env['PYTHONPATH'].split(':')[0] == str(ROOT)


def test_cpp_op_stage_without_the_op(check, monkeypatch):
    monkeypatch.setattr(check, 'cpp_op_imports', lambda: False)
    assert check.cpp_op(build=False) == [
        'C++ op: absent, not built (--quick): the C++ tests skip and the CPU side of the '
        'agreement runs the torch ops'
    ]
    monkeypatch.setattr(check.shutil, 'which', lambda name: None)
    assert check.cpp_op(build=True)[0].startswith('C++ op: absent and no C++ compiler')


def test_pytest_output_read_back(check):
    output = '\n'.join(
        [
            '..F..sE',
            'SKIPPED [4] tests/test_core/test_cuda.py:36: needs CUDA',
            'FAILED tests/test_core/test_cuda.py::test_cuda_label_dtypes[triton-dtype0] - Assert',
            'FAILED tests/test_core/test_ranking.py::test_bin_counts - AssertionError',
            'ERROR tests/test_core/test_cuda.py::test_x[torch] - RuntimeError',
            '==== 2 failed, 30 passed, 4 skipped, 1 error in 12.00s ====',
        ]
    )
    run = check.read_test_output(1, output)
    assert run.summary == '2 failed, 30 passed, 4 skipped, 1 error in 12.00s'
    assert run.cuda_skipped
    assert run.triton_failures == [
        'tests/test_core/test_cuda.py::test_cuda_label_dtypes[triton-dtype0]'
    ]
    assert run.other_failures == [
        'tests/test_core/test_ranking.py::test_bin_counts',
        'tests/test_core/test_cuda.py::test_x[torch]',
    ]
    assert not check.read_test_output(0, '.....\n5 passed in 1.00s').cuda_skipped


def test_tests_cut_off_at_their_time(check):
    run = check.run_tests(quick=True, timeout=0.5)  # pytest cannot even collect in a second
    assert run.returncode is None and run.summary.startswith('cut off after 0 s (last output:')
    assert check.verdict(run, {}, []).problems[0] == 'the tests did not finish in their time'


def test_report_file(check, tmp_path, capsys):
    path = tmp_path / 'out' / 'report.txt'
    report = check.Report(path, 'title')
    report.section('Stage')
    report.add('one', 'two')
    report.write()
    assert path.read_text() == 'title\n\n== Stage\none\ntwo\n'
    assert 'two' in capsys.readouterr().out


def test_device_table_on_cpu(bench):
    backends = [b for b in ('torch', 'cpp') if b in available_backends(CPU)]
    lines, options = [], current_options()
    results, left_out = bench.device_table(
        [(20000, 50)], 'cpu', backends, repeat=1, out=lines.append
    )
    assert left_out == [] and set(results) == set(backends)
    assert len(lines) == 2 + 2 * len(backends)  # header, rule, a line per case and backend
    for rows in results.values():
        assert set(rows) == {(20000, 50, 'early'), (20000, 50, 'late')}
        for r in rows.values():
            assert r['speedup'] == pytest.approx(r['loop_ms'] / r['ours_ms'])
            assert r['over_floor'] == pytest.approx(r['ours_ms'] / r['floor_ms'])
            assert max(r['val_err'], r['grad_err']) <= 1e-5
            assert max(r['cpu_val'], r['cpu_grad']) <= bench.AGREEMENT
    assert current_options() == options  # restored after each forced backend
    # Per backend, the targets' lines and the agreement's; the accuracy ones hold (the speed
    # ones at these sizes say nothing).
    checks = bench.device_checks(results)
    for name in backends:
        texts = [(text, ok) for text, ok in checks if text.startswith(f'{name}: ')]
        accuracy = [ok for text, ok in texts if 'of the float64 reference' in text]
        agreement = [ok for text, ok in texts if 'within 1e-06 of the CPU on every row' in text]
        assert accuracy == [True] and agreement == [True], texts
    _, left_out = bench.device_table([(20000, 50)], 'cpu', backends, 1, deadline=0.0, out=print)
    assert left_out == [(20000, 50, 'early'), (20000, 50, 'late')]


def test_device_checks_leave_out_the_cpu_speed_ups(bench):
    results = {(bench.BIG, 1000, case): row(1.0) for case in ('early', 'late')}
    texts = [text for text, _ in bench.device_checks({'torch': results})]
    assert not [text for text in texts if 'the loop >=' in text]
    assert [text for text, _ in bench.targets_met(results, 'cpu') if 'the loop >=' in text] == [
        'M=8e6 P=1000 early: 100.0x the loop >= 300x',
        'M=8e6 P=1000 late: 100.0x the loop >= 10x',
    ]


def row(ms, err=1e-7, cpu=1e-8):
    return dict(
        ours_ms=ms,
        loop_ms=100.0,
        floor_ms=0.5,
        speedup=100.0 / ms,
        over_floor=ms / 0.5,
        bytes_per_logit=7.0,
        val_err=err,
        grad_err=err,
        cpu_val=cpu,
        cpu_grad=cpu,
    )


KEYS = [(int(1e5), 100, 'early'), (int(1e6), 1000, 'late'), (int(31e6), 1200, 'early')]


def table(torch_ms=(1.0, 2.0, 9.0), triton_ms=(2.0, 1.0, 3.0)):
    return {
        'torch': {k: row(ms) for k, ms in zip(KEYS, torch_ms)},
        'triton': {k: row(ms) for k, ms in zip(KEYS, triton_ms)},
    }


def test_verdict_takes_triton_only_when_it_is_equal_and_faster(check):
    passed = check.read_test_output(0, '50 passed in 9.00s')
    v = check.verdict(passed, table(), [])
    # Slower at M = 1e5 only: small sizes do not count.
    assert (v.backend, v.reasons, v.default_sound) == ('triton', [], True)
    assert check.verdict_lines(v)[0].startswith("VERDICT: set CUDA_AUTO = 'triton'")

    v = check.verdict(passed, table(triton_ms=(2.0, 1.0, 9.5)), [])
    assert v.backend == 'torch' and v.default_sound
    assert v.reasons == ['triton not faster than the torch ops at M=3e+07 P=1200 early']
    lines = check.verdict_lines(v)
    assert lines[0] == (
        "VERDICT: keep CUDA_AUTO = 'torch' in alrp_core/backends/__init__.py, because:"
    )
    assert lines[-1] == 'The CUDA torch ops (the default) passed the tests and every row.'

    results = table()
    results['triton'][KEYS[1]] = row(1.0, cpu=2e-6)
    v = check.verdict(passed, results, [])
    assert v.reasons == ['triton M=1e+06 P=1000 late: differs from the CPU by 2.0e-06']
    results['triton'][KEYS[1]] = row(1.0, err=3e-5)
    assert check.verdict(passed, results, []).reasons == [
        'triton M=1e+06 P=1000 late: error 3.0e-05 > 1e-05'
    ]
    v = check.verdict(passed, {'torch': table()['torch']}, [])
    assert v.reasons == ['no Triton rows (triton >= 3.0 missing)'] and v.default_sound


def test_verdict_keeps_the_torch_ops_on_failed_or_missing_evidence(check):
    triton_failed = check.read_test_output(
        1, 'FAILED tests/test_core/test_cuda.py::test_a[triton-filter] - E\n1 failed, 9 passed'
    )
    v = check.verdict(triton_failed, table(), [])
    assert v.backend == 'torch' and v.reasons == ['Triton tests failed (1)'] and v.default_sound

    other_failed = check.read_test_output(
        1, 'FAILED tests/test_core/test_cuda.py::test_a[torch-filter] - E\n1 failed, 9 passed'
    )
    v = check.verdict(other_failed, table(), [])
    assert not v.default_sound and v.problems == ['tests outside the Triton ones failed (1)']
    assert 'WARNING: the CUDA torch ops (the default) are not shown sound here:' in (
        check.verdict_lines(v)
    )

    cut = check.TestRun(None, 'cut off after 90 s')
    v = check.verdict(cut, table(), [KEYS[2]])
    assert v.backend == 'torch' and v.problems == [
        'the tests did not finish in their time',
        'rows of the table left out for time (1)',
    ]
    skipped = check.read_test_output(0, 'SKIPPED [4] t.py:3: needs CUDA\n4 skipped')
    assert check.verdict(skipped, table(), []).problems == [
        'the CUDA tests skipped (no GPU seen by pytest)'
    ]
    results = table()
    results['torch'][KEYS[0]] = row(1.0, cpu=1e-3)
    v = check.verdict(check.read_test_output(0, '9 passed'), results, [])
    assert not v.default_sound and v.backend == 'torch'


def test_without_a_gpu_it_stops_first(check, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    report = tmp_path / 'report.txt'
    assert check.main(['--report', str(report)]) == 2
    assert 'no GPU visible to torch' in capsys.readouterr().out
    assert not report.exists()

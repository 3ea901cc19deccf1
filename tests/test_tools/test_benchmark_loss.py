"""tools/analysis_tools/benchmark_loss.py: its loop reference is aLRP Loss (the dense oracle's
values and gradients), its batches are what the docstring says, a row measures what it prints, and
the verdict lines say PASS or FAIL by the targets' thresholds."""

import numpy as np
import pytest
import torch

from tests.test_core.oracle import alrp_oracle
from tests.test_core.rs_oracle import rs_oracle
from tests.tool_loader import load_tool


@pytest.fixture(scope='module')
def bench():
    return load_tool('benchmark_loss')


@pytest.mark.parametrize('case', ['early', 'late'])
def test_loop_reference_is_the_oracle(bench, case):
    logits, targets, errors = bench.make_batch(3000, 40, case, 'cpu', seed=2)
    got = bench.loop_reference(logits.double(), targets, errors.double())
    want = alrp_oracle(logits.numpy(), targets.numpy(), errors.numpy())
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-9, atol=1e-12)


def test_batches_are_as_described(bench):
    m, p = 200000, 100
    for case in ('early', 'late'):
        logits, targets, errors = bench.make_batch(m, p, case, 'cpu', labels=torch.int8)
        assert targets.dtype == torch.int8 and errors.shape == (p,)
        assert int((targets == 1).sum()) == p
        assert 0.015 < float((targets == -1).float().mean()) < 0.025
        negatives = logits[targets == 0]
        reach = float((negatives >= logits[targets == 1].min() - 1).float().mean())
        assert reach == 1.0 if case == 'early' else 0.005 < reach < 0.015


def test_a_row_measures_ours_against_the_loop_and_the_floor(bench):
    row = bench.run_case(20000, 50, 'late', 'cpu', repeat=2, passes=True)
    assert row['speedup'] == pytest.approx(row['loop_ms'] / row['ours_ms'])
    assert row['over_floor'] == pytest.approx(row['ours_ms'] / row['floor_ms'])
    assert row['val_err'] <= 1e-5 and row['grad_err'] <= 1e-5
    assert set(row['passes']) == {'scan', 'histogram', 'gradient', 'rest'}
    assert all(seconds >= 0 for seconds in row['passes'].values())


def test_verdicts_follow_the_thresholds(bench):
    def row(speedup, over_floor, err=1e-7, bytes_per_logit=7.0):
        return dict(
            speedup=speedup,
            over_floor=over_floor,
            val_err=err,
            grad_err=err,
            bytes_per_logit=bytes_per_logit,
        )

    big = int(8e6)
    results = {
        (big, 100, 'early'): row(50.0, 2.0),
        (big, 100, 'late'): row(4.0, 8.0),
        (big, 1000, 'early'): row(300.0, 3.0),
        (big, 1000, 'late'): row(9.9, 1.2),
    }
    failed = [text for text, ok in bench.targets_met(results, 'cpu') if not ok]
    assert failed == ['M=8e6 P=1000 late: 9.9x the loop >= 10x']
    results[big, 1000, 'late'] = row(10.0, 8.1, err=2e-5, bytes_per_logit=17.0)
    failed = [text for text, ok in bench.targets_met(results, 'cpu') if not ok]
    assert failed == [
        'values and gradients within 1e-5 of the float64 reference on every row: max 2.0e-05',
        'M=8e6 P=1000 late: 8.1x the floor pass <= 8x',
        'extra memory 17.0 B/logit <= 16 (rows with M >= 1e6)',
    ]


@pytest.mark.parametrize('case', ['early', 'late'])
def test_rs_loop_reference_is_the_rs_oracle(bench, case):
    logits, targets, ious = bench.make_batch(3000, 40, case, 'cpu', seed=3)
    ious[::4] = ious[1::4]  # ties in the IoU targets
    got = bench.rs_loop_reference(logits.double(), targets, ious.double())
    loss_rank, loss_sort, grad_rank, grad_sort = rs_oracle(
        logits.numpy(), targets.numpy(), ious.numpy()
    )
    np.testing.assert_allclose([float(got[0]), float(got[1])], [loss_rank, loss_sort], rtol=1e-9)
    np.testing.assert_allclose(got[2].numpy(), grad_rank + grad_sort, rtol=1e-9, atol=1e-12)


def test_an_rs_row_measures_ours_against_the_loop_and_the_floor(bench):
    row = bench.run_case(20000, 60, 'early', 'cpu', repeat=2, passes=True, loss='rs')
    assert row['speedup'] == pytest.approx(row['loop_ms'] / row['ours_ms'])
    assert row['over_floor'] == pytest.approx(row['ours_ms'] / row['floor_ms'])
    assert row['val_err'] <= 1e-5 and row['grad_err'] <= 1e-5
    assert set(row['passes']) == {'scan', 'histogram', 'gradient', 'rest'}


def test_rs_verdicts_follow_the_thresholds(bench):
    def row(speedup, over_floor, err=1e-7, bytes_per_logit=7.0):
        return dict(
            speedup=speedup,
            over_floor=over_floor,
            val_err=err,
            grad_err=err,
            bytes_per_logit=bytes_per_logit,
        )

    big, rcnn = int(8e6), int(2.6e6)
    results = {
        (big, 1000, 'early'): row(300.0, 3.0),
        (big, 1000, 'late'): row(10.0, 1.2),
        (rcnn, 8000, 'early'): row(500.0, 8.0),
        (rcnn, 8000, 'late'): row(100.0, 4.0),
    }
    assert all(ok for _, ok in bench.rs_targets_met(results))
    results[rcnn, 8000, 'early'] = row(500.0, 8.1)
    results[rcnn, 8000, 'late'] = row(99.9, 4.0)
    failed = [text for text, ok in bench.rs_targets_met(results) if not ok]
    assert failed == [
        'M=2.6e6 P=8000 early: 8.1x the floor pass <= 8x',
        'M=2.6e6 P=8000 late: 99.9x the loop >= 100x',
    ]


def test_the_tables_of_each_loss(bench, capsys, monkeypatch):
    # The whole run on tiny rows (memory not measured): one table per loss, with its verdicts.
    monkeypatch.setattr(bench, 'QUICK_SIZES', [(3000, 20)])
    monkeypatch.setattr(
        bench,
        'cpu_peak_bytes',
        lambda rows, argv: {(*row, case): 0 for row in rows for case in bench.CASES},
    )
    assert bench.main(['--quick', '--repeat', '1', '--loss', 'rs']) in (0, 1)
    out = capsys.readouterr().out
    assert 'Rank & Sort Loss' in out and 'aLRP Loss (' not in out
    assert '  3e+03    20 early' in out and 'values and gradients within 1e-5' in out

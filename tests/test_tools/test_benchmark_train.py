"""tools/analysis_tools/benchmark_train.py in a tiny mode: both RetinaNets train on the same
batch, and the figures and ratio it prints are the ones it measured."""

import statistics

import pytest
import torch
from mmengine.registry import init_default_scope

from tests.tool_loader import load_tool


@pytest.fixture(scope='module')
def bench():
    return load_tool('benchmark_train')


def test_tiny_run_prints_its_figures_and_ratio(bench, capsys):
    results = bench.main(['--device', 'cpu', '--case', '1x64x96', '--iters', '2', '--warmup', '0'])
    out = capsys.readouterr().out

    assert [r['case'] for r in results] == [(1, 64, 96)]
    times = results[0]['times']
    assert list(times) == [bench.FOCAL, bench.ALRP]
    assert all(len(values) == 2 and min(values) > 0 for values in times.values())
    ratio = statistics.median(times[bench.ALRP]) / statistics.median(times[bench.FOCAL])
    assert results[0]['ratio'] == pytest.approx(ratio)
    assert f'batch 1 at 64 x 96: aLRP / Focal = {ratio:.3f} (medians)' in out
    for name, values in times.items():
        assert f'{name:22} {statistics.median(values):>9.3f}' in out
    assert 'PASS' not in out and 'FAIL' not in out  # the target is a GPU one


def test_rs_atss_run_prints_its_verdict_on_the_cpu(bench, capsys):
    argv = ['--device', 'cpu', '--model', 'rs-atss', '--case', '1x64x96', '--iters', '1']
    results = bench.main(argv + ['--warmup', '0'])
    out = capsys.readouterr().out

    times = results[0]['times']
    assert list(times) == [bench.ATSS, bench.RS_ATSS]
    ratio = times[bench.RS_ATSS][0] / times[bench.ATSS][0]
    assert results[0]['ratio'] == pytest.approx(ratio)
    verdict = 'PASS' if ratio <= 1.05 else 'FAIL'
    want = f'batch 1 at 64 x 96: RS-ATSS / ATSS = {ratio:.3f} (medians)  {verdict} (target <= 1.05)'
    assert want in out


def test_rs_atss_against_mmdet_atss(bench):
    init_default_scope('mmdet')
    models = bench.build_models('cpu', 'rs-atss')
    atss, rs_atss = (models[name].bbox_head for name in (bench.ATSS, bench.RS_ATSS))
    assert type(atss).__name__ == 'ATSSHead' and type(rs_atss).__name__ == 'RankingATSSHead'
    assert type(atss.loss_centerness).__name__ == 'CrossEntropyLoss'
    assert type(atss.loss_bbox).__name__ == 'GIoULoss'
    assert type(rs_atss.loss_cls).__name__ == 'RankSortLoss'
    assert models[bench.ATSS].backbone.depth == models[bench.RS_ATSS].backbone.depth == 50
    # mmdet's ATSS has one anchor a location, the RS paper's RS-ATSS three.
    assert (atss.num_base_priors, rs_atss.num_base_priors) == (1, 3)


def test_batch_fits_a_non_square_image(bench):
    data = bench.make_batch(3, 64, 200, num_classes=80, seed=1)
    assert [tuple(img.shape) for img in data['inputs']] == [(3, 64, 200)] * 3
    for sample in data['data_samples']:
        boxes = sample.gt_instances.bboxes
        assert sample.img_shape == (64, 200)
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert boxes.min() >= 0 and (boxes[:, 2] <= 199).all() and (boxes[:, 3] <= 63).all()
        assert sample.gt_instances.labels.max() < 80


def test_both_models_learn_from_the_step(bench):
    """Each timed step is a real training step: every model's parameters move."""
    models = bench.build_models('cpu')
    data = bench.make_batch(1, 64, 64, num_classes=80)
    for model in models.values():
        before = [p.detach().clone() for p in model.bbox_head.parameters()]
        bench.time_step(model, data, bench.make_optim(model), 'cpu')
        moved = [not torch.equal(b, p) for b, p in zip(before, model.bbox_head.parameters())]
        assert all(moved)


@pytest.mark.parametrize(
    'case, error',
    [
        ('2x512', 'a case is BATCHxHEIGHTxWIDTH'),
        ('2x512x512x3', 'a case is BATCHxHEIGHTxWIDTH'),
        ('ax512x512', 'a case is BATCHxHEIGHTxWIDTH'),
        ('0x512x512', 'a batch >= 1 and sides >= 64'),
        ('2x32x512', 'a batch >= 1 and sides >= 64'),
    ],
)
def test_bad_case_is_refused_with_its_form(bench, case, error, capsys):
    with pytest.raises(SystemExit):
        bench.main(['--device', 'cpu', '--case', case])
    err = capsys.readouterr().err
    assert error in err and repr(case) in err


def test_cuda_without_a_gpu_is_refused(bench, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(SystemExit):
        bench.main(['--device', 'cuda'])
    assert 'torch.cuda.is_available() is False' in capsys.readouterr().err

"""tools/demo/demo.py end to end on a few tiny images, its report module, and the demo configs."""

import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps
from mmdet_alrp.demo.training_report import (
    CURVE_PANELS,
    format_table,
    plot_predictions,
    plot_training_curves,
    read_scalars,
)
from mmdet_alrp.models.losses import RankSortLoss
from tests.tool_loader import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def load_demo():
    return load_tool('demo')


def assert_png(path):
    with open(path, 'rb') as f:
        assert f.read(8) == PNG_SIGNATURE, f'{path} is not a PNG'


def write_scalars(run_dir, records):
    vis_data = osp.join(run_dir, '20240101_000000', 'vis_data')
    os.makedirs(vis_data)
    with open(osp.join(vis_data, 'scalars.json'), 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in records)


@pytest.fixture(scope='module')
def demo():
    return load_demo()


def test_quick_demo_trains_evaluates_and_reports(demo, tmp_path, capsys):
    work_dir = tmp_path / 'demo'
    table = demo.main(['--quick', '--work-dir', str(work_dir)])
    out = capsys.readouterr().out

    assert list(table) == ['aLRP Loss']
    row = table['aLRP Loss']
    for column in ('AP', 'AP50', 'AP75', 'oLRP'):
        assert 0 <= row[column] <= 1, (column, row)
    with open(work_dir / 'metrics.json') as f:
        assert json.load(f) == table
    for name in ('training_curves.png', 'predictions.png'):
        assert_png(work_dir / name)
        assert str(work_dir / name) in out
    assert '| aLRP Loss |' in out and row['checkpoint'] in out
    assert 'demo wall time: ' in out
    assert f'on {demo.training_threads(0)} torch thread(s)' in out  # --quick: no workers

    # the Runner's logs: aLRP Loss's parts and SB each iteration, COCO AP and oLRP at the end
    train, val = read_scalars(str(work_dir / 'alrp_loss'))
    assert len(train) == 2  # 8 images in batches of 4, one epoch, logged every iteration
    assert all(r['sb_weight'] == 50 and 0 <= r['alrp_cls'] <= 1 for r in train)
    assert val[-1]['coco/bbox_mAP'] == row['AP'] and val[-1]['coco/bbox_moLRP'] == row['oLRP']
    # the checkpoint is the trained model's, with SB reset by SelfBalanceHook after the epoch
    state = torch.load(row['checkpoint'], map_location='cpu', weights_only=False)['state_dict']
    assert state['bbox_head.loss_cls.self_balance.weight'].item() != 50
    # the dataset was generated under the work directory, not in the repository's data/
    assert osp.isfile(work_dir / 'data' / 'manifest.json')


def test_demo_config_overrides(demo, tmp_path):
    cfg = demo.demo_config(demo.MODELS['aLRP Loss'][0], '/shapes', str(tmp_path / 'run'), epochs=4)
    assert cfg.train_cfg.max_epochs == 4 and cfg.train_cfg.val_interval <= 4
    assert [s.end for s in cfg.param_scheduler if s.by_epoch] == [4]
    assert cfg.train_dataloader.dataset.data_root == '/shapes'
    assert cfg.val_evaluator.ann_file == '/shapes/annotations/instances_val.json'
    assert cfg.experiment_name == 'run'
    again = demo.demo_config(demo.MODELS['aLRP Loss'][0], '/shapes', str(tmp_path / 'run'))
    assert again.visualizer.name != cfg.visualizer.name


@pytest.mark.parametrize(
    'cores, workers, threads', [(2, 1, 1), (2, 0, 2), (8, 1, 7), (1, 1, 1), (4, 2, 2)]
)
def test_training_threads_leave_a_core_to_each_loader_worker(
    demo, monkeypatch, cores, workers, threads
):
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: set(range(cores)), raising=False)
    assert demo.training_threads(workers) == threads


def test_training_runs_on_the_threads_asked_for_and_restores_them(demo, monkeypatch):
    seen = []
    monkeypatch.setattr(
        demo,
        '_train_and_evaluate',
        lambda cfg: seen.append((cfg, torch.get_num_threads())) or {'AP': 0.5},
    )
    before = torch.get_num_threads()
    threads = 1 if before > 1 else 2
    assert demo.train_and_evaluate('cfg', threads) == {'AP': 0.5}
    assert seen == [('cfg', threads)]
    assert torch.get_num_threads() == before


def test_threads_must_be_positive(demo):
    with pytest.raises(SystemExit):
        demo.parse_args(['--threads', '0'])
    assert demo.parse_args(['--threads', '3']).threads == 3


def test_demo_models_differ_only_in_head_loss(demo):
    """The comparison is fair: same data, detector, schedule and budget."""
    shared = []
    for config_file, _ in demo.MODELS.values():
        cfg = Config.fromfile(osp.join(demo.CONFIG_DIR, config_file)).to_dict()
        head = cfg['model'].pop('bbox_head')
        for key in ('type', 'loss_cls', 'loss_bbox', 'self_balance', 'reg_decoded_bbox'):
            head.pop(key, None)
        cfg['model']['bbox_head'] = head
        hooks = cfg.pop('custom_hooks', [])
        assert hooks == ([dict(type='SelfBalanceHook', period=16)] if 'alrp' in config_file else [])
        shared.append(cfg)
    assert len(shared) == 4 and all(cfg == shared[0] for cfg in shared)


def test_rs_loss_model_regresses_decoded_boxes_with_its_loss(demo):
    cfg = Config.fromfile(osp.join(demo.CONFIG_DIR, demo.MODELS['RS Loss'][0]))
    head = cfg.model.bbox_head
    assert head.type == 'RankingRetinaHead' and head.loss_cls == dict(type='RankSortLoss')
    assert head.loss_bbox is None and head.reg_decoded_bbox is True
    assert 'custom_hooks' not in cfg  # RS balances itself every iteration, without a hook


@pytest.mark.parametrize(
    'argv, names',
    [
        ([], ['aLRP Loss']),
        (['--compare'], ['aLRP Loss', 'Focal Loss', 'AP Loss', 'RS Loss']),
        (['--models', 'rs_loss'], ['RS Loss']),
        (['--models', 'ap_loss', 'rs_loss', 'ap_loss'], ['AP Loss', 'RS Loss']),
    ],
)
def test_models_selected_by_the_command_line(demo, argv, names):
    assert demo.selected_models(demo.parse_args(argv)) == names


@pytest.mark.parametrize('argv', [['--models', 'rs'], ['--compare', '--models', 'rs_loss']])
def test_unknown_or_conflicting_model_selection_is_refused(demo, argv):
    with pytest.raises(SystemExit):
        demo.parse_args(argv)


def test_quick_rs_loss_demo_logs_its_parts(demo, tmp_path):
    work_dir = tmp_path / 'demo'
    table = demo.main(['--quick', '--models', 'rs_loss', '--work-dir', str(work_dir)])
    assert list(table) == ['RS Loss']
    assert 0 <= table['RS Loss']['AP'] <= 1
    train, _ = read_scalars(str(work_dir / 'rs_loss'))
    assert len(train) == 2
    for r in train:
        # balanced every iteration: the box loss's value is the ranking loss's
        assert r['loss_bbox'] == pytest.approx(r['loss_rank'] + r['loss_sort'], rel=1e-4)
        assert r['loss'] == pytest.approx(2 * r['loss_bbox'], rel=1e-4)
        assert 0 < r['loss_rank'] <= 1 and 0 <= r['loss_sort'] <= 1
        assert r['sb_weight'] > 0 and 0 < r['giou_error'] <= 2


def test_demo_anchors_match_every_object_size_and_position(demo):
    """Square boxes of 10 to 120 px (the shapes' 6-100 px under the scale jitter) have, at every
    offset to the coarsest stride, an anchor of IoU about 0.5 or more: no object of the demo is
    left with only a low-IoU fallback positive of MaxIoUAssigner (the P3-P6 anchors of 16-203 px
    gave boxes under 12 px no anchor of IoU 0.5 anywhere)."""
    cfg = Config.fromfile(osp.join(demo.CONFIG_DIR, demo.MODELS['aLRP Loss'][0]))
    generator = TASK_UTILS.build(cfg.model.bbox_head.anchor_generator)
    size = cfg.image_size
    anchors = torch.cat(
        generator.grid_priors(
            [(-(-size // s), -(-size // s)) for s, _ in generator.strides], device='cpu'
        )
    )
    assert anchors.shape == (3 * sum((size // s) ** 2 for s in (4, 8, 16, 32)), 4)
    offsets = torch.arange(0, max(s for s, _ in generator.strides), dtype=torch.float32)
    y, x = torch.meshgrid(offsets, offsets, indexing='ij')
    for side in range(10, 121, 2):
        boxes = torch.stack([x.flatten(), y.flatten(), x.flatten() + side, y.flatten() + side], 1)
        best = bbox_overlaps(boxes, anchors).max(dim=1).values
        assert best.min() >= 0.48, f'{side} px boxes: best anchor IoU {best.min():.3f}'


def test_curves_plot_the_parts_rank_sort_loss_logs():
    """The curve panels name the keys RankSortLoss returns (but the box loss, whose value is
    the ranking loss's, and the counts), and aLRP Loss's parts."""
    loss = RankSortLoss()
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.0], [-1.0, 1.0]])
    labels = torch.tensor([[1, 0], [0, 0], [0, 1]])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 20.0, 20.0]])
    logged = set(loss(logits, labels, boxes, boxes + 1.0)) - {'loss_bbox', 'mean_iou', 'num_pos'}
    plotted = {key for _, _, _, series in CURVE_PANELS for key, _, _ in series}
    assert logged <= plotted and {'alrp_cls', 'alrp_loc'} <= plotted


def test_training_curves_overlay_runs_and_read_the_latest_log(tmp_path):
    write_scalars(
        str(tmp_path / 'a'),
        [
            dict(loss=1.0, alrp_cls=0.9, alrp_loc=0.1, sb_weight=50.0, step=1),
            {'coco/bbox_mAP': 0.2, 'coco/bbox_mAP_50': 0.5, 'step': 1},
        ],
    )
    write_scalars(str(tmp_path / 'b'), [dict(loss=2.0, loss_cls=1.5, step=1)])
    write_scalars(
        str(tmp_path / 'c'),
        [dict(loss=1.2, loss_rank=0.4, loss_sort=0.2, giou_error=0.3, sb_weight=2.0, step=1)],
    )
    train, val = read_scalars(str(tmp_path / 'a'))
    assert [r['step'] for r in train] == [1] and val[0]['coco/bbox_mAP'] == 0.2
    out = plot_training_curves(
        {name: str(tmp_path / name.lower()) for name in 'ABC'},
        str(tmp_path / 'plots' / 'curves.png'),
    )
    assert_png(out)
    with pytest.raises(FileNotFoundError):
        read_scalars(str(tmp_path / 'empty'))


def test_predictions_figure(tmp_path):
    image = np.zeros((32, 32, 3), np.uint8)
    sample = dict(
        image=image,
        gt_bboxes=[[1, 1, 10, 10]],
        gt_labels=[1],
        predictions=dict(A=(np.array([[1.0, 1.0, 9.0, 9.0]]), np.array([0.9]), np.array([1]))),
    )
    out = plot_predictions(
        [sample, sample],
        ['a', 'b'],
        [(255, 0, 0), (0, 255, 0)],
        str(tmp_path / 'pred.png'),
        caption='test',
    )
    assert_png(out)


def test_format_table():
    table = format_table({'x': dict(AP=0.5, n=3), 'longer name': dict(AP=0.25)}, ['AP', 'n'])
    lines = table.splitlines()
    assert lines[1].split('|')[1:4] == [' model       ', ' AP    ', ' n ']
    assert lines[3] == '| x           | 0.500 | 3 |'
    assert lines[4] == '| longer name | 0.250 | - |'
    assert len({len(line) for line in lines}) == 1


def test_olrp_thresholds_by_label(demo, tmp_path):
    log_dir = tmp_path / '20240101_000000'
    log_dir.mkdir()
    classes = [dict(label=1, threshold=None), dict(label=0, threshold=0.25)]
    (log_dir / 'olrp_thresholds.json').write_text(json.dumps(dict(classes=classes)))
    assert demo.olrp_thresholds(str(tmp_path)).tolist() == [0.25, float('inf')]
    with pytest.raises(FileNotFoundError, match='olrp_thresholds.json'):
        demo.olrp_thresholds(str(tmp_path / 'no_run'))

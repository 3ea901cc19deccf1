"""tools/demo/demo.py end to end on a few tiny images, its report module, and the demo configs."""

import json
import os
import os.path as osp
import re

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from mmengine.config import Config
from pycocotools import mask as mask_utils

from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps
from mmdet_alrp.demo.training_report import (
    CURVE_PANELS,
    format_table,
    overlay_masks,
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


def test_olrp_thresholds_of_the_masks(demo, tmp_path):
    log_dir = tmp_path / '20240101_000000'
    log_dir.mkdir()
    content = dict(
        classes=[dict(label=0, threshold=0.5)],
        segm_classes=[dict(label=1, threshold=0.75), dict(label=0, threshold=None)],
    )
    (log_dir / 'olrp_thresholds.json').write_text(json.dumps(content))
    assert demo.olrp_thresholds(str(tmp_path), 'segm').tolist() == [float('inf'), 0.75]
    assert demo.olrp_thresholds(str(tmp_path)).tolist() == [0.5]
    content.pop('segm_classes')
    (log_dir / 'olrp_thresholds.json').write_text(json.dumps(content))
    with pytest.raises(KeyError, match='no segm thresholds'):
        demo.olrp_thresholds(str(tmp_path), 'segm')


def test_segm_mode_trains_the_mask_model_in_its_own_work_dir(demo):
    args = demo.parse_args(['--segm'])
    assert demo.selected_models(args) == ['RS Mask R-CNN']
    assert args.work_dir == osp.join(ROOT, 'work_dirs', 'demo_segm')
    assert demo.parse_args([]).work_dir == osp.join(ROOT, 'work_dirs', 'demo')
    cfg = Config.fromfile(osp.join(demo.CONFIG_DIR, demo.SEGM_MODELS['RS Mask R-CNN'][0]))
    assert cfg.model.type == 'MaskRCNN' and cfg.val_evaluator.metric == ['bbox', 'segm']
    with pytest.raises(SystemExit):
        demo.parse_args(['--segm', '--compare'])


def test_make_demo_segm_installs_then_runs_the_segm_demo():
    with open(osp.join(ROOT, 'Makefile')) as f:
        makefile = f.read()
    match = re.search(r'^demo-segm:([^\n]*)\n\t(.*)$', makefile, re.M)
    assert match, 'no demo-segm target'
    assert 'install' in match.group(1).split()
    assert match.group(2) == '$(PY) tools/demo/demo.py --segm'


def test_quick_segm_demo_reports_box_and_mask_metrics(demo, tmp_path, capsys):
    work_dir = tmp_path / 'segm'
    table = demo.main(['--segm', '--quick', '--work-dir', str(work_dir)])
    out = capsys.readouterr().out

    assert list(table) == ['RS Mask R-CNN']
    row = table['RS Mask R-CNN']
    _, val = read_scalars(str(work_dir / 'rs_mask_rcnn'))
    for column, key in demo.METRICS.items():
        assert row[column] == val[-1][key], column
    with open(work_dir / 'metrics.json') as f:
        assert json.load(f) == table
    header = next(line for line in out.splitlines() if line.startswith('| model'))
    assert [cell.strip() for cell in header.strip('|').split('|')] == ['model'] + list(
        demo.METRICS
    ) + ['train_minutes']
    assert_png(work_dir / 'predictions.png')
    assert str(work_dir / 'predictions.png') in out


def test_shown_samples_carry_the_ground_truth_masks(demo, tmp_path):
    from mmdet_alrp.demo import generate_synthetic_shapes

    data_root = generate_synthetic_shapes(
        str(tmp_path / 'data'), num_train=1, num_val=3, image_size=48
    )['data_root']
    results = {'A': dict(predictions=[()] * 2)}
    with open(osp.join(data_root, 'annotations', 'instances_val.json')) as f:
        coco = json.load(f)
    samples = demo.shown_samples(data_root, results, with_masks=True)
    assert len(samples) == 2
    for sample, image_id in zip(samples, sorted(im['id'] for im in coco['images'])):
        anns = [a for a in coco['annotations'] if a['image_id'] == image_id]
        masks = sample['gt_masks']
        assert masks.dtype == bool and masks.shape == (len(anns), 48, 48)
        # the annotations' areas are their visible pixel counts; the masks are disjoint
        assert masks.sum(axis=(1, 2)).tolist() == [a['area'] for a in anns]
        assert masks.sum(axis=0).max() <= 1
        assert (masks[:, :, :] == [mask_utils.decode(a['segmentation']) for a in anns]).all()
    assert 'gt_masks' not in demo.shown_samples(data_root, results)[0]


def test_overlay_masks_blends_each_class_colour_over_its_pixels():
    image = np.full((4, 6, 3), 100, np.uint8)
    masks = np.zeros((2, 4, 6), bool)
    masks[0, :2, :3] = True  # rows 0-1, columns 0-2: class 0, red
    masks[1, 1:3, 2:4] = True  # rows 1-2, columns 2-3: class 1, blue, over the red at (1, 2)
    out = overlay_masks(image, masks, [0, 1], [(255, 0, 0), (0, 0, 255)], alpha=0.25)
    red = [0.75 * 100 + 0.25 * 255, 75, 75]  # 138.75, 75, 75
    blue_over_red = [0.75 * red[0], 0.75 * red[1], 0.75 * red[2] + 0.25 * 255]
    blue = [75, 75, 0.75 * 100 + 0.25 * 255]
    expected = np.full((4, 6, 3), 100.0)
    expected[:2, :3] = red
    expected[1:3, 2:4] = blue
    expected[1, 2] = blue_over_red
    assert out.dtype == np.uint8
    assert out.tolist() == np.rint(expected).tolist()
    assert out[1, 2].tolist() == [104, 56, 120]
    assert (image == 100).all()  # the image itself is left as it was


@pytest.mark.parametrize(
    'masks, labels, alpha, message',
    [
        (np.zeros((1, 4, 5), bool), [0], 0.5, r'masks must be \(K, 4, 6\)'),
        (np.zeros((4, 6), bool), [0], 0.5, r'masks must be \(K, 4, 6\)'),
        (np.zeros((2, 4, 6), bool), [0], 0.5, '2 masks but 1 labels'),
        (np.zeros((1, 4, 6), bool), [0], 1.5, r'alpha must be in \[0, 1\]'),
    ],
)
def test_overlay_masks_refuses_bad_input(masks, labels, alpha, message):
    with pytest.raises(ValueError, match=message):
        overlay_masks(np.zeros((4, 6, 3), np.uint8), masks, labels, [(1, 2, 3)], alpha=alpha)


def test_predictions_figure_draws_the_masks_where_they_are(tmp_path):
    """Ground truth above, the model below: each mask's pixels in the picture are its class's
    blended colour, at its place in the image (pixel i covering [i, i + 1], the boxes'
    coordinates), and the rest of the image is in grey."""
    image = np.full((32, 32, 3), [30, 60, 90], np.uint8)
    background = [60, 60, 60]  # the image in grey: the mean of its channels
    gt_masks = np.zeros((1, 32, 32), bool)
    gt_masks[0, :16, :16] = True  # top left, class 0
    pred_masks = np.zeros((1, 32, 32), bool)
    pred_masks[0, 16:, 16:] = True  # bottom right, class 1
    sample = dict(
        image=image,
        gt_bboxes=[[0, 0, 16, 16]],
        gt_labels=[0],
        gt_masks=gt_masks,
        predictions=dict(
            A=(np.array([[16.0, 16.0, 32.0, 32.0]]), np.array([0.9]), np.array([1]), pred_masks)
        ),
    )
    palette = [(255, 0, 0), (0, 255, 0)]
    out = plot_predictions([sample], ['a', 'b'], palette, str(tmp_path / 'pred.png'))
    picture = np.rint(imread(out)[..., :3] * 255).astype(int)
    blended = [
        np.rint(0.4 * np.array(background) + 0.6 * np.array(colour)).tolist() for colour in palette
    ]
    half = picture.shape[0] // 2
    for row_offset, colour, box_colour, filled in zip(
        (0, half), blended, palette, [(0, 0), (1, 1)]
    ):
        panel = picture[row_offset : row_offset + half]
        is_image = (panel == background).all(-1) | (panel == colour).all(-1)
        # the rows and columns the image spans (text has few pixels of one grey)
        rows = np.nonzero(is_image.sum(axis=1) > 50)[0]
        cols = np.nonzero(is_image.sum(axis=0) > 50)[0]
        top, left = rows.min(), cols.min()
        height, width = rows.max() - top + 1, cols.max() - left + 1
        assert abs(height - width) <= 2 and height > 100  # the 32 px image, scaled up
        for quarter_y in (0, 1):
            for quarter_x in (0, 1):
                # the middle of each quarter of the image
                y = top + int((quarter_y + 0.5) * height / 2)
                x = left + int((quarter_x + 0.5) * width / 2)
                expected = colour if (quarter_y, quarter_x) == filled else background
                assert panel[y, x].tolist() == expected, (row_offset, quarter_y, quarter_x)
        # the box's outline (1.5 pt, 2 px wide) runs along the mask's inner edge (the one inside
        # the image), within 3 px, where half an image pixel is over 4 px
        edge = np.max if filled == (0, 0) else np.min
        for axis in (0, 1):
            outline = np.nonzero((panel == box_colour).all(-1))[axis]
            mask = np.nonzero((panel == colour).all(-1))[axis]
            assert abs(edge(outline) - edge(mask)) <= 3, (row_offset, axis)

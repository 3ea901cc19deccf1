"""The demo: aLRP Loss trains a detector on the built-in synthetic shapes, on a CPU, in minutes.

    python tools/demo/demo.py              # aLRP Loss RetinaNet (make demo)
    python tools/demo/demo.py --compare    # aLRP, Focal, AP and RS Loss (make demo-compare)
    python tools/demo/demo.py --models rs_loss focal_loss   # these models only
    python tools/demo/demo.py --epochs 12 --work-dir work_dirs/demo_short
    python tools/demo/demo.py --quick      # a few iterations on a few images: a smoke test
    python tools/demo/demo.py --segm       # RS Loss Mask R-CNN, boxes and masks (make demo-segm)

Writes the dataset once (mmdet_alrp.demo.synthetic_shapes, 1000 train and 200 val images
of 160 px, under data/synthetic_shapes), then trains every model of configs/demo/ asked for
with MMEngine's Runner, as tools/train.py does, evaluates it on the val set (COCO AP and oLRP;
of the boxes and, with ``--segm``, of the masks) and keeps its checkpoint. Writes to the work
directory (work_dirs/demo, or work_dirs/demo_segm with ``--segm``):

    <model>/                  the Runner's work directory: config, logs, vis_data/scalars.json,
                              the last checkpoint
    training_curves.png       loss, the parts of aLRP / RS Loss, the SB weight, AP per evaluation
    predictions.png           detections on a few val images beside their ground truth, each
                              class above its oLRP-optimal score threshold; with ``--segm`` the
                              masks too, above the classes' mask oLRP-optimal thresholds
    metrics.json              the final table

and prints the table and these paths.
"""

import argparse
import gc
import json
import os
import os.path as osp
import time
from typing import Dict, List

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner
from pycocotools import mask as mask_utils

from mmdet_alrp.demo import METAINFO, generate_synthetic_shapes
from mmdet_alrp.demo.training_report import (
    format_table,
    latest_run_file,
    plot_predictions,
    plot_training_curves,
    read_scalars,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(ROOT, 'configs', 'demo')
#: The models of the demo: name -> (config file, run directory name). The first is ``make demo``.
MODELS = {
    'aLRP Loss': ('alrp-loss_retinanet_r18-c16_shapes.py', 'alrp_loss'),
    'Focal Loss': ('focal-loss_retinanet_r18-c16_shapes.py', 'focal_loss'),
    'AP Loss': ('ap-loss_retinanet_r18-c16_shapes.py', 'ap_loss'),
    'RS Loss': ('rank-sort-loss_retinanet_r18-c16_shapes.py', 'rs_loss'),
}
#: The instance segmentation models of ``--segm`` (``make demo-segm``), as :data:`MODELS`.
SEGM_MODELS = {
    'RS Mask R-CNN': ('rank-sort-loss_mask-rcnn_r18-c16_shapes.py', 'rs_mask_rcnn'),
}
#: Run directory name -> model name, the values of ``--models``.
RUN_NAMES = {run_name: name for name, (_, run_name) in MODELS.items()}
#: Table columns -> the metric logged by CocoLRPMetric: of the boxes, then of the masks (logged
#: by the models of :data:`SEGM_MODELS` only).
METRICS = {
    'AP': 'coco/bbox_mAP',
    'AP50': 'coco/bbox_mAP_50',
    'AP75': 'coco/bbox_mAP_75',
    'oLRP': 'coco/bbox_moLRP',
    'mask AP': 'coco/segm_mAP',
    'mask AP50': 'coco/segm_mAP_50',
    'mask AP75': 'coco/segm_mAP_75',
    'mask oLRP': 'coco/segm_moLRP',
}
#: Dataset sizes: (train images, val images, image side in pixels).
FULL_DATA = (1000, 200, 160)
QUICK_DATA = (8, 4, 96)
NUM_SHOWN = 4


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train and evaluate aLRP Loss on the built-in synthetic shapes, with plots'
    )
    models = parser.add_mutually_exclusive_group()
    models.add_argument(
        '--compare',
        action='store_true',
        help='also train Focal Loss, AP Loss and RS Loss, with the same budget',
    )
    models.add_argument(
        '--models',
        nargs='+',
        choices=list(RUN_NAMES),
        help='train these models only, by run directory name (default: alrp_loss)',
    )
    models.add_argument(
        '--segm',
        action='store_true',
        help='instance segmentation: train RS Loss Mask R-CNN on the shapes and their masks',
    )
    parser.add_argument('--epochs', type=int, help="training epochs (default: the configs')")
    parser.add_argument(
        '--work-dir',
        help='where runs, plots and metrics go (default: work_dirs/demo, or work_dirs/demo_segm '
        'with --segm)',
    )
    parser.add_argument(
        '--data-root',
        help='dataset directory (default: data/synthetic_shapes, or <work-dir>/data with --quick)',
    )
    parser.add_argument(
        '--quick',
        action='store_true',
        help=f'smoke test: {QUICK_DATA[0]} train and {QUICK_DATA[1]} val images, '
        'batches of 4, one epoch unless --epochs',
    )
    parser.add_argument(
        '--threads',
        type=int,
        help='torch threads (default: the CPU cores less the training data '
        "loader's workers, at least 1)",
    )
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f'--epochs must be at least 1, got {args.epochs}')
    if args.threads is not None and args.threads < 1:
        parser.error(f'--threads must be at least 1, got {args.threads}')
    if args.quick and args.epochs is None:
        args.epochs = 1
    if args.work_dir is None:
        args.work_dir = osp.join(ROOT, 'work_dirs', 'demo_segm' if args.segm else 'demo')
    if args.data_root is None:
        args.data_root = (
            osp.join(args.work_dir, 'data')
            if args.quick
            else osp.join(ROOT, 'data', 'synthetic_shapes')
        )
    return args


def selected_models(args: argparse.Namespace) -> List[str]:
    """The names (keys of :data:`MODELS`, or of :data:`SEGM_MODELS` with ``--segm``) of the
    models to train: every one with ``--compare`` or ``--segm``, those of ``--models`` in their
    order (each once), else the first."""
    if args.segm:
        return list(SEGM_MODELS)
    if args.compare:
        return list(MODELS)
    if args.models:
        return [RUN_NAMES[run_name] for run_name in dict.fromkeys(args.models)]
    return list(MODELS)[:1]


def demo_config(
    config_file: str, data_root: str, work_dir: str, epochs=None, quick: bool = False
) -> Config:
    """A demo config with its data, work directory and, if given, number of epochs replaced.

    ``quick`` trains on batches of 4 without loader workers, logs every iteration and ends the
    self-balance period with the epoch (so that its one epoch updates SB). The demo configs keep
    every detection (score threshold 0), so a model trained for a few iterations is evaluated
    on boxes all the same.
    """
    cfg = Config.fromfile(osp.join(CONFIG_DIR, config_file))
    cfg.work_dir = work_dir
    # The Runner appends its timestamp to the experiment name, its logger's name. The visualizer
    # is a global instance looked up by name: a new name per run, or it would log to the
    # directory of the first run of the process.
    cfg.experiment_name = osp.basename(work_dir)
    cfg.visualizer.name = f'{cfg.experiment_name}_{time.time_ns()}'
    ann_file = osp.join(data_root, 'annotations', 'instances_val.json')
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = data_root
    for split in ('val', 'test'):
        cfg[f'{split}_evaluator'].ann_file = ann_file
    if epochs is not None:
        cfg.train_cfg.max_epochs = epochs
        cfg.train_cfg.val_interval = min(cfg.train_cfg.val_interval, epochs)
        cfg.default_hooks.checkpoint.interval = cfg.train_cfg.val_interval
        for scheduler in cfg.param_scheduler:
            if scheduler.get('by_epoch', True):
                scheduler.end = epochs
    if quick:
        for split in ('train', 'val', 'test'):
            cfg[f'{split}_dataloader'].update(batch_size=4, num_workers=0, persistent_workers=False)
        cfg.default_hooks.logger.interval = 1
        for hook in cfg.get('custom_hooks', []):
            if hook.type == 'SelfBalanceHook':
                hook.period = None
    return cfg


def training_threads(num_workers: int) -> int:
    """torch threads that leave a core to each data loader worker: the process's CPU cores
    less ``num_workers``, at least 1. More threads than that contend for the cores with the
    workers (and with each other), which costs more than the extra thread gains: on 2 cores
    with one worker, 1 thread trains the demo detector faster than 2."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    return max(1, (cores or 1) - num_workers)


def train_and_evaluate(cfg: Config, threads: int) -> dict:
    """Trains with the Runner on ``threads`` torch threads (validating as the config says, and
    after the last epoch); returns the last evaluation's metrics, ``train_minutes``,
    ``checkpoint`` and ``predictions`` of the first val images: ``(bboxes, scores, labels)``
    each, above the classes' box oLRP-optimal thresholds, or for a model that predicts masks
    ``(bboxes, scores, labels, masks)`` above the mask oLRP-optimal thresholds."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _train_and_evaluate(cfg)
    finally:
        torch.set_num_threads(previous_threads)


def _train_and_evaluate(cfg: Config) -> dict:
    start = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.train()
    minutes = (time.perf_counter() - start) / 60
    last_evaluation = read_scalars(cfg.work_dir)[1][-1]
    result = {
        column: last_evaluation[key] for column, key in METRICS.items() if key in last_evaluation
    }
    result['train_minutes'] = round(minutes, 2)
    with open(osp.join(cfg.work_dir, 'last_checkpoint')) as f:
        result['checkpoint'] = f.read().strip()
    dataset = runner.val_dataloader.dataset
    indices = list(range(min(NUM_SHOWN, len(dataset))))
    model = runner.model.eval()
    with torch.no_grad():
        outputs = model.test_step(pseudo_collate([dataset[i] for i in indices]))
    keys = ('bboxes', 'scores', 'labels')
    iou_type = 'bbox'
    if 'masks' in outputs[0].pred_instances:
        keys, iou_type = keys + ('masks',), 'segm'
    thresholds = olrp_thresholds(cfg.work_dir, iou_type)
    result['predictions'] = []
    for out in outputs:
        values = [out.pred_instances[key].numpy() for key in keys]
        keep = values[1] >= thresholds[values[2]]
        result['predictions'].append(tuple(value[keep] for value in values))
    del runner, model
    gc.collect()
    return result


def olrp_thresholds(run_dir: str, iou_type: str = 'bbox') -> np.ndarray:
    """Every class's oLRP-optimal score threshold at the run's last evaluation (the
    ``olrp_thresholds.json`` of CocoLRPMetric), by label, of the boxes (``iou_type`` 'bbox') or
    of the masks ('segm'); infinite where undefined (no detection of the class).

    Raises:
        FileNotFoundError: the run wrote no thresholds.
        KeyError: the run evaluated no ``iou_type``.
    """
    with open(latest_run_file(run_dir, 'olrp_thresholds.json')) as f:
        content = json.load(f)
    key = 'classes' if iou_type == 'bbox' else f'{iou_type}_classes'
    if key not in content:
        raise KeyError(f'no {iou_type} thresholds in the olrp_thresholds.json of {run_dir}')
    classes = content[key]
    return np.array(
        [
            np.inf if c['threshold'] is None else c['threshold']
            for c in sorted(classes, key=lambda c: c['label'])
        ]
    )


def shown_samples(data_root: str, results: Dict[str, dict], with_masks: bool = False) -> list:
    """The val images of the predictions, with their ground truth (and its masks if
    ``with_masks``), for :func:`plot_predictions`."""
    with open(osp.join(data_root, 'annotations', 'instances_val.json')) as f:
        coco = json.load(f)
    num_shown = len(next(iter(results.values()))['predictions'])
    samples = []
    for index, image in enumerate(sorted(coco['images'], key=lambda im: im['id'])[:num_shown]):
        anns = [a for a in coco['annotations'] if a['image_id'] == image['id']]
        sample = dict(
            image=mmcv.imread(osp.join(data_root, 'val', image['file_name']), channel_order='rgb'),
            gt_bboxes=[[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)],
            gt_labels=[a['category_id'] - 1 for a in anns],
            predictions={name: r['predictions'][index] for name, r in results.items()},
        )
        if with_masks:
            sample['gt_masks'] = np.array(
                [mask_utils.decode(a['segmentation']).astype(bool) for a in anns]
            ).reshape(len(anns), image['height'], image['width'])
        samples.append(sample)
    return samples


def main(argv=None) -> Dict[str, dict]:
    start = time.perf_counter()
    args = parse_args(argv)
    num_train, num_val, image_size = QUICK_DATA if args.quick else FULL_DATA
    paths = generate_synthetic_shapes(
        args.data_root, num_train=num_train, num_val=num_val, image_size=image_size
    )
    data_root = paths['data_root']
    names = selected_models(args)
    models = SEGM_MODELS if args.segm else MODELS
    work_dir = osp.abspath(args.work_dir)
    results, run_dirs = {}, {}
    for name in names:
        config_file, run_name = models[name]
        run_dirs[name] = osp.join(work_dir, run_name)
        cfg = demo_config(config_file, data_root, run_dirs[name], args.epochs, args.quick)
        threads = args.threads or training_threads(cfg.train_dataloader.num_workers)
        print(
            f'\n==== {name}: training {config_file} in {run_dirs[name]} on {threads} torch '
            f'thread(s)',
            flush=True,
        )
        results[name] = train_and_evaluate(cfg, threads)
    curves = plot_training_curves(run_dirs, osp.join(work_dir, 'training_curves.png'))
    predictions = plot_predictions(
        shown_samples(data_root, results, with_masks=args.segm),
        METAINFO['classes'],
        METAINFO['palette'],
        osp.join(work_dir, 'predictions.png'),
        caption=(
            'masks and boxes above the mask oLRP-optimal score threshold of their class'
            if args.segm
            else 'detections above the oLRP-optimal score threshold of their class'
        ),
    )
    table = {
        name: {k: v for k, v in r.items() if k != 'predictions'} for name, r in results.items()
    }
    metrics_file = osp.join(work_dir, 'metrics.json')
    with open(metrics_file, 'w') as f:
        json.dump(table, f, indent=2)
    print(f'\nval set: {num_val} images of {data_root}')
    columns = [c for c in METRICS if any(c in row for row in table.values())]
    print(format_table(table, columns + ['train_minutes']))
    for name, r in table.items():
        print(f'checkpoint ({name}): {r["checkpoint"]}')
    print(f'training curves: {curves}\npredictions: {predictions}\nmetrics: {metrics_file}')
    print(
        f'demo wall time: {(time.perf_counter() - start) / 60:.1f} minutes '
        f'(data, training, evaluations and plots)'
    )
    return table


if __name__ == '__main__':
    main()

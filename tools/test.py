"""Tests (evaluates) a checkpoint of a detector, with mmdet_alrp's modules registered.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out RESULTS.pkl] [--show]
        [--show-dir DIR] [--wait-time SECONDS] [--cfg-options KEY=VALUE ...]
        [--launcher LAUNCHER] [--tta] [--no-strict]

CHECKPOINT is a file, a URL or a model name (``open-mmlab://...``), loaded weights-only (see
:mod:`mmdet_alrp.engine.checkpoint`). A checkpoint that leaves weights of the model missing, or
gives them another shape, is refused (:class:`CheckpointCheckHook`) unless ``--no-strict``.

The metrics are logged and written to ``WORK_DIR/TIMESTAMP/TIMESTAMP.json``. Without CUDA a
launcher other than ``none`` runs the processes on CPU with gloo (see
:mod:`mmdet_alrp.engine.distributed`).
"""

import argparse
import copy

from mmengine.config import Config, ConfigDict

from mmdet.evaluation import DumpDetResults
from mmdet_alrp.engine.cli import add_launch_args, build_runner, load_config, parse_launch_args

DEFAULT_TTA_MODEL = dict(
    type='DetTTAModel', tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a detector')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory of the logs and metrics')
    parser.add_argument('--out', help='dump the predictions to this .pkl file')
    parser.add_argument('--show', action='store_true', help='show the predictions')
    parser.add_argument(
        '--show-dir',
        help='save the drawn predictions in this directory, relative to WORK_DIR/TIMESTAMP',
    )
    parser.add_argument('--wait-time', type=float, default=2, help='seconds each image shows')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation: the '
        "config's tta_model and tta_pipeline, else a horizontal flip",
    )
    parser.add_argument(
        '--no-strict',
        action='store_true',
        help='evaluate even a checkpoint '
        'that leaves model weights missing or of another shape (warned only)',
    )
    add_launch_args(parser, 'test_dataloader.batch_size=4')
    args = parse_launch_args(parser, argv)
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error('--out must be a .pkl or .pickle file')
    return args


def flip_tta_pipeline(pipeline: list) -> list:
    """The test pipeline with each image also seen flipped horizontally."""
    load, *steps, pack = copy.deepcopy(pipeline)
    if 'meta_keys' in pack:
        pack['meta_keys'] = tuple(pack['meta_keys']) + tuple(
            key for key in ('flip', 'flip_direction') if key not in pack['meta_keys']
        )
    flips = [dict(type='RandomFlip', prob=1.0), dict(type='RandomFlip', prob=0.0)]
    transforms = [[step] for step in steps] + [flips, [pack]]
    return [load, dict(type='TestTimeAug', transforms=transforms)]


def build_config(args: argparse.Namespace) -> Config:
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='CheckpointCheckHook', strict=not args.no_strict)
    ]
    if args.show or args.show_dir:
        hooks = cfg.get('default_hooks', {})
        if 'visualization' not in hooks:
            raise KeyError(
                '--show and --show-dir need default_hooks.visualization '
                "(dict(type='DetVisualizationHook')) in the config"
            )
        hooks.visualization.update(
            draw=True, show=args.show, wait_time=args.wait_time, test_out_dir=args.show_dir
        )
    if args.tta:
        dataset = cfg.test_dataloader.dataset
        dataset.pipeline = cfg.get('tta_pipeline') or flip_tta_pipeline(dataset.pipeline)
        cfg.model = ConfigDict(**cfg.get('tta_model', DEFAULT_TTA_MODEL), module=cfg.model)
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    runner = build_runner(build_config(args))
    if args.out is not None:
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    main()

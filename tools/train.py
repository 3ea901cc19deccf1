"""Trains a detector from an MMDetection config, with mmdet_alrp's modules registered.

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--auto-scale-lr]
        [--resume [CHECKPOINT]] [--cfg-options KEY=VALUE ...] [--launcher LAUNCHER]

``--resume`` alone resumes from the latest checkpoint of the work directory. A checkpoint
without training state (a plain state dict) is refused with a message that says so
(:class:`CheckpointCheckHook`); every checkpoint loads weights-only (see
:mod:`mmdet_alrp.engine.checkpoint`). Without CUDA a launcher other than ``none`` runs the
processes on CPU with gloo (see :mod:`mmdet_alrp.engine.distributed`).
"""

import argparse

from mmengine.config import Config
from mmengine.logging import print_log

from mmdet_alrp.engine.cli import add_launch_args, build_runner, load_config, parse_launch_args


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='directory of the logs and checkpoints')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate with the total batch size '
        '(cfg.auto_scale_lr.base_batch_size)',
    )
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or, without a path, from the latest '
        'checkpoint of the work directory',
    )
    add_launch_args(parser, 'train_cfg.max_epochs=1')
    return parse_launch_args(parser, argv)


def build_config(args: argparse.Namespace) -> Config:
    cfg = load_config(args)
    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print_log('the config already uses AmpOptimWrapper', logger='current')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in (cfg.get('auto_scale_lr') or {}):
            raise KeyError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='CheckpointCheckHook', strict=False)
    ]
    return cfg


def main(argv=None) -> None:
    runner = build_runner(build_config(parse_args(argv)))
    runner.train()


if __name__ == '__main__':
    main()

"""What ``tools/train.py`` and ``tools/test.py`` share: the launcher arguments, the config read
from the command line and the runner built from it."""

import argparse
import os
import os.path as osp
from typing import Optional, Sequence

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmdet.utils import setup_cache_size_limit_of_dynamo

from .distributed import setup_cpu_distributed


class KeyValueAction(DictAction):
    """MMEngine's ``DictAction`` (``KEY=VALUE`` pairs into a dict), with an item that lacks the
    ``=`` refused by argparse with a message that shows the form (MMEngine's fails to unpack)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        for item in values:
            if '=' not in item:
                raise argparse.ArgumentError(self, f'expects KEY=VALUE pairs, got {item!r} (no =)')
        super().__call__(parser, namespace, values, option_string)


def add_launch_args(parser: argparse.ArgumentParser, cfg_options_example: str) -> None:
    """Adds ``--cfg-options``, ``--launcher`` and ``--local_rank`` (also ``--local-rank``, as
    ``torch.distributed.launch`` passes it) to ``parser``.

    Args:
        parser (ArgumentParser): the parser of the tool.
        cfg_options_example (str): a ``KEY=VALUE`` shown in the help of ``--cfg-options``.
    """
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=KeyValueAction,
        metavar='KEY=VALUE',
        help=f'override config settings, e.g. {cfg_options_example}',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_launch_args(
    parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None
) -> argparse.Namespace:
    """Parses ``argv`` (the command line when None) and exports ``--local_rank`` as
    ``LOCAL_RANK`` unless the launcher already set it."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def load_config(args: argparse.Namespace) -> Config:
    """The config file ``args.config`` with ``args.launcher`` and ``args.cfg_options`` applied.

    The work directory is ``args.work_dir``, else the config's ``work_dir``, else
    ``./work_dirs/CONFIG_NAME``.
    """
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def build_runner(cfg: Config) -> Runner:
    """The runner of ``cfg`` (``cfg.runner_type`` if set), after the torch.compile cache limit
    and, without CUDA, the gloo process group (:func:`setup_cpu_distributed`) are set up."""
    setup_cache_size_limit_of_dynamo()
    setup_cpu_distributed(cfg)
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)

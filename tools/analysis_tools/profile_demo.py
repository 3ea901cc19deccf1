"""Where a training iteration of the demo spends its time, stage by stage, and the CPU shares.

Trains a demo config (configs/demo/, as tools/demo/demo.py sets it up) with MMEngine's Runner for
--epochs epochs without evaluation, timing each stage of every iteration after the first
--skip ones:

    data wait        the training loop waiting for the next batch from the data loader
    preprocess       the model's data preprocessor (to float, normalise, pad, stack)
    backbone+neck    ResNet and FPN forward
    head forward     the head's convolutions
    anchors+targets  the anchors and the assigner's targets (get_anchors, get_targets)
    loss             the rest of the head's loss_by_feat: flattening, decoding, the loss
    backward         autograd
    optim step       gradient clipping, the optimizer step, zero_grad
    other            the rest of the iteration (parse_losses, hooks, logging)

and, over the same window, the CPU time of the main process and of the data-loader worker
processes as a share of the machine's cores. ``--torch-profile N`` also prints torch.profiler's
table of the ops of N iterations.

    python tools/analysis_tools/profile_demo.py                             # aLRP Loss, 1 epoch
    python tools/analysis_tools/profile_demo.py --model 'Focal Loss' --num-workers 0
    python tools/analysis_tools/profile_demo.py --checkpoint work_dirs/demo/alrp_loss/epoch_24.pth
"""

import argparse
import functools
import importlib.util
import os
import os.path as osp
import time
import types
from collections import defaultdict
from typing import Callable, Dict, List, Optional

import torch
from mmengine.config import DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmdet_alrp.demo import generate_synthetic_shapes

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STAGES = (
    'data wait',
    'preprocess',
    'backbone+neck',
    'head forward',
    'anchors+targets',
    'loss',
    'backward',
    'optim step',
    'other',
)
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


def load_demo():
    spec = importlib.util.spec_from_file_location(
        'tool_demo', osp.join(ROOT, 'tools', 'demo', 'demo.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (its threads included), from /proc."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def child_pids(pid: int) -> List[int]:
    children = []
    for task in os.listdir(f'/proc/{pid}/task'):
        with open(f'/proc/{pid}/task/{task}/children') as f:
            children += [int(c) for c in f.read().split()]
    return children


CLOCKS = {'wall': time.perf_counter, 'cpu': time.process_time}


class StageTimer:
    """Seconds per stage of the iterations being recorded, by clock: ``wall`` (elapsed) and
    ``cpu`` (CPU time of the main process, all its threads)."""

    def __init__(self) -> None:
        self.recording = False
        self.seconds = {clock: defaultdict(list) for clock in CLOCKS}
        self._current = {clock: defaultdict(float) for clock in CLOCKS}

    @staticmethod
    def now() -> Dict[str, float]:
        return {clock: read() for clock, read in CLOCKS.items()}

    def wrap(self, fn: Callable, stage: str) -> Callable:
        """``fn`` timed as ``stage``; a bound method stays one (MMEngine's schedulers wrap the
        optimizer's ``step`` through its ``__self__``)."""

        def timed(*args, **kwargs):
            start = self.now()
            try:
                return fn(*args, **kwargs)
            finally:
                end = self.now()
                for clock in CLOCKS:
                    self._current[clock][stage] += end[clock] - start[clock]

        if hasattr(fn, '__self__'):
            return types.MethodType(
                lambda _owner, *args, **kwargs: timed(*args, **kwargs), fn.__self__
            )
        return timed

    def end_iteration(self, total: Optional[Dict[str, float]]) -> None:
        """Files the stages of the iteration that just ended (``total`` seconds by clock, data
        wait included; None: not a whole iteration, not filed), the nested ones subtracted from
        their parents."""
        current = self._current
        self._current = {clock: defaultdict(float) for clock in CLOCKS}
        if not self.recording or total is None:
            return
        for clock, parts in current.items():
            stages = dict(parts)
            stages['loss'] = parts['loss_by_feat'] - parts['anchors+targets']
            stages['head forward'] = parts['head forward'] - parts['loss_by_feat']
            stages.pop('loss_by_feat', None)
            stages['other'] = total[clock] - sum(stages.values())
            for stage in STAGES:
                self.seconds[clock][stage].append(stages.get(stage, 0.0))


class TimedLoader:
    """A data loader whose batches are timed as ``data wait``; delegates everything else."""

    def __init__(self, loader, timer: StageTimer) -> None:
        self._loader, self._timer = loader, timer

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self):
        batches = iter(self._loader)
        next_batch = self._timer.wrap(functools.partial(next, batches), 'data wait')
        while True:
            try:
                yield next_batch()
            except StopIteration:
                return


class ProfileHook(Hook):
    """Marks the iterations: records those after the first ``skip`` and measures the CPU time of
    the main process and of its children over them; optionally runs torch.profiler over the
    first ``profile_iters`` recorded ones."""

    priority = 'LOWEST'

    def __init__(self, timer: StageTimer, skip: int, profile_iters: int) -> None:
        self.timer, self.skip, self.profile_iters = timer, skip, profile_iters
        self.profiler = None
        self.last = None
        self.cpu = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        now = self.timer.now()
        self.timer.end_iteration(
            None if self.last is None else {clock: now[clock] - self.last[clock] for clock in now}
        )
        self.last = now
        recorded = len(self.timer.seconds['wall'].get('other', []))
        if runner.iter + 1 == self.skip:
            self.timer.recording = True
            self.cpu['start'] = (now['wall'], self.cpu_seconds())
            if self.profile_iters:
                self.profiler = torch.profiler.profile(
                    activities=[torch.profiler.ProfilerActivity.CPU]
                )
                self.profiler.__enter__()
        if self.profiler is not None and recorded == self.profile_iters:
            self.profiler.__exit__(None, None, None)
            print(self.profiler.key_averages().table(sort_by='self_cpu_time_total', row_limit=30))
            self.profiler = None

    def after_train_epoch(self, runner) -> None:
        self.cpu['end'] = (time.perf_counter(), self.cpu_seconds())
        self.last = None  # the epoch's end (and a new loader iterator) is not an iteration

    @staticmethod
    def cpu_seconds() -> Dict[str, float]:
        pid = os.getpid()
        return {
            'main process': process_cpu_seconds(pid),
            'loader workers': sum(process_cpu_seconds(c) for c in child_pids(pid)),
        }


def parse_args(argv=None) -> argparse.Namespace:
    demo = load_demo()
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default='aLRP Loss', choices=list(demo.MODELS))
    parser.add_argument('--epochs', type=int, default=1)
    parser.add_argument('--skip', type=int, default=5, help='iterations not recorded (warm-up)')
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data', 'synthetic_shapes'))
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'profile_demo'))
    parser.add_argument('--checkpoint', help='weights to start from (a late-training profile)')
    parser.add_argument(
        '--num-workers', type=int, help="train loader workers (default: the config's)"
    )
    parser.add_argument(
        '--threads', type=int, help="torch threads (default: the demo's, see tools/demo/demo.py)"
    )
    parser.add_argument(
        '--torch-profile',
        type=int,
        default=0,
        metavar='N',
        help="print torch.profiler's op table of N recorded iterations",
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override config entries, as tools/train.py',
    )
    parser.add_argument(
        '--quick', action='store_true', help="the demo's --quick data and batches (a smoke test)"
    )
    args = parser.parse_args(argv)
    args.demo = demo
    return args


def main(argv=None) -> Dict[str, Dict[str, List[float]]]:
    args = parse_args(argv)
    demo = args.demo
    num_train, num_val, size = demo.QUICK_DATA if args.quick else demo.FULL_DATA
    data_root = generate_synthetic_shapes(
        args.data_root, num_train=num_train, num_val=num_val, image_size=size
    )['data_root']
    cfg = demo.demo_config(
        demo.MODELS[args.model][0], data_root, args.work_dir, args.epochs, args.quick
    )
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None  # no evaluation
    cfg.default_hooks.checkpoint.interval = args.epochs + 1
    cfg.default_hooks.checkpoint.save_last = False
    cfg.merge_from_dict(args.cfg_options)
    if args.checkpoint:
        cfg.load_from = args.checkpoint
    if args.num_workers is not None:
        cfg.train_dataloader.num_workers = args.num_workers
        cfg.train_dataloader.persistent_workers = args.num_workers > 0
    torch.set_num_threads(args.threads or demo.training_threads(cfg.train_dataloader.num_workers))
    runner = Runner.from_cfg(cfg)

    timer = StageTimer()
    model, head = runner.model, runner.model.bbox_head
    model.data_preprocessor.forward = timer.wrap(model.data_preprocessor.forward, 'preprocess')
    model.extract_feat = timer.wrap(model.extract_feat, 'backbone+neck')
    # head.loss = forward + loss_by_feat; both timed, loss_by_feat's own parts subtracted after
    head.loss = timer.wrap(head.loss, 'head forward')
    head.loss_by_feat = timer.wrap(head.loss_by_feat, 'loss_by_feat')
    head.get_anchors = timer.wrap(head.get_anchors, 'anchors+targets')
    head.get_targets = timer.wrap(head.get_targets, 'anchors+targets')
    loop = runner.train_loop
    loop.dataloader = TimedLoader(loop.dataloader, timer)
    hook = ProfileHook(timer, args.skip, args.torch_profile)
    runner.register_hook(hook)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    wrapper = runner.optim_wrapper
    wrapper.backward = timer.wrap(wrapper.backward, 'backward')
    wrapper.step = timer.wrap(wrapper.step, 'optim step')
    wrapper.zero_grad = timer.wrap(wrapper.zero_grad, 'optim step')
    runner.train()

    iters = len(timer.seconds['wall']['other'])
    total = {clock: sum(sum(v) for v in timer.seconds[clock].values()) for clock in CLOCKS}
    print(
        f'\n{args.model}: {iters} iterations recorded (batch {cfg.train_dataloader.batch_size}, '
        f'{cfg.train_dataloader.num_workers} loader workers, {torch.get_num_threads()} torch '
        f'threads): {total["wall"] / iters:.3f} s an iteration, {total["cpu"] / iters:.3f} CPU '
        's of the main process'
    )
    print(f'{"stage":16} {"wall s":>7} {"share":>6} {"CPU s":>7} {"share":>6}')
    for stage in STAGES:
        print(
            f'{stage:16} '
            + ' '.join(
                f'{sum(timer.seconds[clock][stage]) / iters:>7.4f} '
                f'{sum(timer.seconds[clock][stage]) / total[clock]:>6.1%}'
                for clock in CLOCKS
            )
        )
    (start, cpu_start), (end, cpu_end) = hook.cpu['start'], hook.cpu['end']
    cores = os.cpu_count()
    for who in cpu_start:
        used = cpu_end[who] - cpu_start[who]
        print(
            f'{who}: {used / (end - start) / cores:.1%} of {cores} cores '
            f'({used / iters:.3f} CPU s an iteration)'
        )
    return {clock: {stage: timer.seconds[clock][stage] for stage in STAGES} for clock in CLOCKS}


if __name__ == '__main__':
    main()

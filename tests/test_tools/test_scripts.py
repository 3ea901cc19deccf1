"""The launch scripts build the right torchrun / srun command lines (run with stub commands
that print their arguments)."""

import os
import os.path as osp
import stat
import subprocess

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture
def stub(tmp_path):
    """A directory with an executable ``stub`` that prints its arguments one per line, also
    linked as ``srun``; returns (environment with it first on PATH, stub path)."""
    path = tmp_path / 'stub'
    path.write_text('#!/bin/sh\nfor arg in "$@"; do echo "$arg"; done\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    (tmp_path / 'srun').symlink_to(path)
    env = dict(os.environ, PATH=f'{tmp_path}{os.pathsep}{os.environ["PATH"]}', PYTHON=str(path))
    for key in (
        'NNODES',
        'NODE_RANK',
        'PORT',
        'MASTER_ADDR',
        'GPUS',
        'GPUS_PER_NODE',
        'CPUS_PER_TASK',
        'SRUN_ARGS',
    ):
        env.pop(key, None)
    return env, str(path)


def run_script(name, args, env):
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', name)] + args,
        env=env,
        capture_output=True,
        text=True,
    )
    return proc.returncode, proc.stdout.splitlines(), proc.stderr


def test_dist_train(stub):
    env, _ = stub
    rc, argv, _ = run_script(
        'dist_train.sh',
        ['cfg.py', '3', '--amp'],
        dict(env, NNODES='2', NODE_RANK='1', PORT='1234', MASTER_ADDR='10.0.0.1'),
    )
    assert rc == 0
    assert argv == [
        '-m',
        'torch.distributed.run',
        '--nnodes=2',
        '--node_rank=1',
        '--master_addr=10.0.0.1',
        '--master_port=1234',
        '--nproc_per_node=3',
        osp.join(ROOT, 'tools', 'train.py'),
        'cfg.py',
        '--launcher',
        'pytorch',
        '--amp',
    ]


def test_dist_test_defaults(stub):
    env, _ = stub
    rc, argv, _ = run_script('dist_test.sh', ['cfg.py', 'model.pth', '2', '--out', 'r.pkl'], env)
    assert rc == 0
    assert argv == [
        '-m',
        'torch.distributed.run',
        '--nnodes=1',
        '--node_rank=0',
        '--master_addr=127.0.0.1',
        '--master_port=29500',
        '--nproc_per_node=2',
        osp.join(ROOT, 'tools', 'test.py'),
        'cfg.py',
        'model.pth',
        '--launcher',
        'pytorch',
        '--out',
        'r.pkl',
    ]


def test_slurm_train(stub):
    env, python = stub
    rc, argv, _ = run_script(
        'slurm_train.sh',
        ['part', 'job', 'cfg.py', 'out', '--amp'],
        dict(env, GPUS='16', SRUN_ARGS='--qos high'),
    )
    assert rc == 0
    assert argv == [
        '-p',
        'part',
        '--job-name=job',
        '--gres=gpu:8',
        '--ntasks=16',
        '--ntasks-per-node=8',
        '--cpus-per-task=5',
        '--kill-on-bad-exit=1',
        '--qos',
        'high',
        python,
        '-u',
        osp.join(ROOT, 'tools', 'train.py'),
        'cfg.py',
        '--work-dir=out',
        '--launcher=slurm',
        '--amp',
    ]


def test_slurm_test(stub):
    env, python = stub
    rc, argv, _ = run_script(
        'slurm_test.sh',
        ['part', 'job', 'cfg.py', 'model.pth'],
        dict(env, GPUS='4', GPUS_PER_NODE='4', CPUS_PER_TASK='2'),
    )
    assert rc == 0
    assert argv == [
        '-p',
        'part',
        '--job-name=job',
        '--gres=gpu:4',
        '--ntasks=4',
        '--ntasks-per-node=4',
        '--cpus-per-task=2',
        '--kill-on-bad-exit=1',
        python,
        '-u',
        osp.join(ROOT, 'tools', 'test.py'),
        'cfg.py',
        'model.pth',
        '--launcher=slurm',
    ]


@pytest.mark.parametrize(
    'name, args',
    [
        ('dist_train.sh', ['cfg.py']),
        ('dist_test.sh', ['cfg.py', 'model.pth']),
        ('slurm_train.sh', ['part', 'job', 'cfg.py']),
        ('slurm_test.sh', ['part', 'job', 'cfg.py']),
    ],
)
def test_missing_arguments_print_usage(stub, name, args):
    rc, argv, err = run_script(name, args, stub[0])
    assert rc == 2 and argv == [] and 'usage:' in err

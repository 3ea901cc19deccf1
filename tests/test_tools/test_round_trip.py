"""The real entry points on a tiny aLRP Loss RetinaNet and tiny generated data: train, resume,
test, MMDetection's own train.py resuming our config, mim train / mim test, and 2-process gloo
training on CPU."""

import glob
import json
import os
import os.path as osp
import pickle
import shutil
import socket
import subprocess
import sys

import pytest
import torch

import mmdet
from mmdet_alrp.demo import generate_synthetic_shapes  # (imports the checkpoint allow-list)
from tests.tiny_detector import param_digest, write_tiny_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools')


def run(args, **env):
    """Runs a command from the repository root on CPU with the repository importable; returns
    the output and fails the test with the output when the command fails."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')])),
        CUDA_VISIBLE_DEVICES='',
        **env,
    )
    proc = subprocess.run(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.returncode == 0, f'{args} failed:\n{proc.stdout[-6000:]}'
    return proc.stdout


def scalar_iters(work_dir):
    """The iterations logged (training) in the run directories of ``work_dir``."""
    iters = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            iters += [rec['iter'] for rec in map(json.loads, f) if 'loss' in rec]
    return iters


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('round_trip')
    data = generate_synthetic_shapes(str(tmp / 'data'), num_train=8, num_val=4, image_size=64)
    config = write_tiny_config(str(tmp / 'tiny_retinanet.py'), data['data_root'])
    work_dir = str(tmp / 'train')
    run([sys.executable, osp.join(TOOLS, 'train.py'), config, '--work-dir', work_dir])
    return tmp, config, work_dir


def test_train_saves_iteration_checkpoint(setup):
    _, _, work_dir = setup
    ckpt = torch.load(osp.join(work_dir, 'iter_2.pth'), weights_only=True)
    assert ckpt['meta']['iter'] == 2
    assert ckpt['message_hub']['runtime_info']['iter'] == 1  # the last iteration's index
    assert scalar_iters(work_dir) == [1, 2]


def test_resume_continues_from_saved_iteration(setup):
    tmp, config, work_dir = setup
    resumed = str(tmp / 'resumed')
    shutil.copytree(work_dir, resumed)
    out = run(
        [
            sys.executable,
            osp.join(TOOLS, 'train.py'),
            config,
            '--work-dir',
            resumed,
            '--resume',
            '--cfg-options',
            'train_cfg.max_iters=4',
        ]
    )
    assert 'resumed epoch: 0, iter: 2' in out
    ckpt = torch.load(osp.join(resumed, 'iter_4.pth'), weights_only=True)
    assert ckpt['meta']['iter'] == 4
    assert ckpt['message_hub']['runtime_info']['iter'] == 3
    assert 'optimizer' in ckpt and ckpt['optimizer']['state']
    assert scalar_iters(resumed) == [1, 2, 3, 4]  # the first run's two, then two more


def test_test_tool_evaluates_checkpoint(setup):
    tmp, config, work_dir = setup
    test_dir = str(tmp / 'test')
    out_file = str(tmp / 'predictions.pkl')
    run(
        [
            sys.executable,
            osp.join(TOOLS, 'test.py'),
            config,
            osp.join(work_dir, 'iter_2.pth'),
            '--work-dir',
            test_dir,
            '--out',
            out_file,
        ]
    )
    (log_dir,) = glob.glob(osp.join(test_dir, '*', ''))
    with open(osp.join(log_dir, osp.basename(osp.dirname(log_dir)) + '.json')) as f:
        metrics = json.load(f)
    # COCO AP and oLRP from one evaluation, and the per-class optimal thresholds beside them
    assert 0 <= metrics['coco/bbox_mAP'] <= 1 and 0 <= metrics['coco/bbox_moLRP'] <= 1
    with open(osp.join(log_dir, 'olrp_thresholds.json')) as f:
        assert len(json.load(f)['classes']) == 5
    with open(out_file, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 4
    assert all(len(p['pred_instances']['bboxes']) > 0 for p in predictions)


def test_mmdet_own_train_tool_resumes_our_config(setup):
    """Nothing of ours lives only in our tools: MMDetection's tools/train.py (shipped in the
    wheel under mmdet/.mim) resumes our checkpoint through the config's custom_imports."""
    tmp, config, work_dir = setup
    mmdet_train = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    if not osp.isfile(mmdet_train):
        pytest.skip('this mmdet install ships no tools/train.py')
    resumed = str(tmp / 'mmdet_resumed')
    shutil.copytree(work_dir, resumed)
    out = run(
        [
            sys.executable,
            mmdet_train,
            config,
            '--work-dir',
            resumed,
            '--resume',
            '--cfg-options',
            'train_cfg.max_iters=3',
            'default_hooks.checkpoint.interval=3',
        ]
    )
    assert 'resumed epoch: 0, iter: 2' in out
    assert torch.load(osp.join(resumed, 'iter_3.pth'), weights_only=True)['meta']['iter'] == 3


def test_mim_trains_and_tests_our_config(setup):
    """OpenMMLab's launcher runs our config through mmdet's own tools (mim train mmdet CONFIG,
    mim test mmdet CONFIG --checkpoint CKPT): the config's custom_imports bring our modules."""
    tmp, config, _ = setup
    trained = str(tmp / 'mim_train')
    run(
        [
            sys.executable,
            '-m',
            'mim',
            'train',
            'mmdet',
            config,
            '--gpus',
            '0',
            '--work-dir',
            trained,
        ]
    )
    checkpoint = osp.join(trained, 'iter_2.pth')
    assert torch.load(checkpoint, weights_only=True)['meta']['iter'] == 2
    out = run(
        [
            sys.executable,
            '-m',
            'mim',
            'test',
            'mmdet',
            config,
            '--checkpoint',
            checkpoint,
            '--gpus',
            '0',
            '--work-dir',
            str(tmp / 'mim_test'),
        ]
    )
    assert 'coco/bbox_mAP' in out and 'coco/bbox_moLRP' in out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_dist_train_two_cpu_processes_agree(setup):
    tmp, _, _ = setup
    config = write_tiny_config(
        str(tmp / 'tiny_retinanet_digest.py'),
        str(tmp / 'data'),
        imports=('mmdet_alrp', 'tests.tiny_detector'),
        hooks=[dict(type='ParamDigestHook')],
    )
    work_dir = str(tmp / 'dist')
    run(
        ['bash', osp.join(TOOLS, 'dist_train.sh'), config, '2', '--work-dir', work_dir],
        PYTHON=sys.executable,
        PORT=str(free_port()),
        OMP_NUM_THREADS='1',
    )
    ranks = []
    for rank in range(2):
        with open(osp.join(work_dir, f'param_digest_rank{rank}.json')) as f:
            ranks.append(json.load(f))
    for rank, record in enumerate(ranks):
        assert record['rank'] == rank and record['world_size'] == 2 and record['iter'] == 2
        assert record['wrapper'] == 'MMDistributedDataParallel'
    assert ranks[0]['digest'] == ranks[1]['digest']
    # Each rank saw other images, yet the epoch's SB update (2 iterations an epoch on 2 ranks)
    # gave both the same SB from the sums of both ranks.
    sb = ranks[0]['self_balance']
    assert sb == ranks[1]['self_balance']
    assert (
        sb['bbox_head.loss_cls.self_balance.weight'] != 50
        and sb['bbox_head.loss_cls.self_balance.sums'] == [0] * 3
    )
    state = torch.load(osp.join(work_dir, 'iter_2.pth'), weights_only=True)['state_dict']
    assert param_digest((name, state[name]) for name in ranks[0]['names']) == ranks[0]['digest']

"""The demo-data configs of the detectors the paper has no result for (aLRP FCOS, ATSS and
Cascade R-CNN) train in tools/train.py on generated shapes: two iterations each in a process of
its own, then one validation, with every loss term finite and logged, and the checkpoint holding
the self-balance weights that SelfBalanceHook updated (one per aLRP Loss: the head's, or the
RPN's and each cascade stage's)."""

import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from tests.tool_loader import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIGS = osp.join(ROOT, 'configs', 'demo')

ALRP_TERMS = ('loss_cls', 'loss_bbox', 'alrp_cls', 'alrp_loc', 'sb_weight', 'num_pos')
#: config: {checkpoint key of each SelfBalance weight: prefix of its loss's logged terms}
DETECTORS = {
    'alrp-loss_fcos_r18-c16_shapes.py': {'bbox_head.loss_cls.self_balance.weight': ''},
    'alrp-loss_atss_r18-c16_shapes.py': {'bbox_head.loss_cls.self_balance.weight': ''},
    'alrp-loss_cascade-rcnn_r18-c16_shapes.py': {
        'rpn_head.loss_cls.self_balance.weight': 'rpn_',
        **{
            f'roi_head.bbox_head.{stage}.loss_cls.self_balance.weight': f's{stage}.'
            for stage in range(3)
        },
    },
}


def logged_terms(prefix: str):
    """The logged keys of the aLRP Loss whose keys start with ``prefix`` (the RPN renames
    loss_cls to loss_rpn_cls, alrp_cls to rpn_alrp_cls)."""
    if prefix == 'rpn_':
        return tuple(
            f'loss_rpn_{key[5:]}' if key.startswith('loss_') else f'rpn_{key}' for key in ALRP_TERMS
        )
    return tuple(prefix + key for key in ALRP_TERMS)


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    """4 training and 2 validation images of the built-in shapes (160 x 160, the configs')."""
    data_root = str(tmp_path_factory.mktemp('shapes'))
    load_tool('make_demo_data').main([data_root, '--num-train', '4', '--num-val', '2'])
    return data_root


def train(config: str, data_root: str, work_dir: str) -> str:
    """tools/train.py on ``config`` with the data at ``data_root``: one epoch of 2 batches of 2,
    logged every iteration, SB updated after each 2 iterations, a validation and a checkpoint
    after the epoch. Returns the output; fails the test with it if training fails."""
    ann_file = osp.join(data_root, 'annotations', 'instances_val.json')
    loader = (
        'batch_size=2',
        'num_workers=0',
        'persistent_workers=False',
        f'dataset.data_root={data_root}',
    )
    options = [f'{split}_dataloader.{key}' for split in ('train', 'val', 'test') for key in loader]
    options += [f'{split}_evaluator.ann_file={ann_file}' for split in ('val', 'test')]
    options += [
        'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.logger.interval=1',
        'custom_hooks.0.period=2',
    ]
    env = dict(
        os.environ,
        CUDA_VISIBLE_DEVICES='',
        PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')])),
    )
    proc = subprocess.run(
        [
            sys.executable,
            osp.join(ROOT, 'tools', 'train.py'),
            osp.join(DEMO_CONFIGS, config),
            '--work-dir',
            work_dir,
            '--cfg-options',
            *options,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.returncode == 0, f'{config} failed to train:\n{proc.stdout[-6000:]}'
    return proc.stdout


def logged(work_dir: str):
    """The training and the validation records of the run's scalars.json."""
    (path,) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        records = [json.loads(line) for line in f]
    return ([r for r in records if 'loss' in r], [r for r in records if 'coco/bbox_mAP' in r])


@pytest.mark.parametrize('config', sorted(DETECTORS))
def test_demo_detector_trains_in_tools_train(config, shapes, tmp_path):
    """Each aLRP Loss logs its terms every iteration; the first (the head's, or the RPN's) has
    positives from the start (a cascade stage may have none before the RPN improves:
    PseudoSampler adds no gt box as a proposal); SB stays 50 until the hook
    ends the 2-iteration period, then is (sum L_cls + sum L_loc) / sum L_loc of its logged
    values (unchanged if no positive)."""
    balances = DETECTORS[config]
    work_dir = str(tmp_path / 'work_dir')
    train(config, shapes, work_dir)

    train_records, val_records = logged(work_dir)
    assert [r['iter'] for r in train_records] == [1, 2]
    for record in train_records:
        assert record['loss'] > 0 and math.isfinite(record['loss'])
        for prefix in balances.values():
            terms = logged_terms(prefix)
            assert set(terms) <= set(record), sorted(set(terms) - set(record))
            assert all(math.isfinite(record[key]) for key in terms)
            assert record[terms[4]] == 50  # sb_weight
    assert train_records[0][logged_terms(list(balances.values())[0])[5]] > 0  # num_pos
    (val,) = val_records
    assert 0 <= val['coco/bbox_mAP'] <= 1 and 0 <= val['coco/bbox_moLRP'] <= 1

    state = torch.load(osp.join(work_dir, 'epoch_1.pth'), map_location='cpu', weights_only=True)[
        'state_dict'
    ]
    assert sorted(key for key in state if key.endswith('self_balance.weight')) == sorted(balances)
    for key, prefix in balances.items():
        _, _, alrp_cls, alrp_loc, _, _ = logged_terms(prefix)
        cls = sum(record[alrp_cls] for record in train_records)
        loc = sum(record[alrp_loc] for record in train_records)
        expected = (cls + loc) / loc if loc > 0 else 50
        assert state[key].item() == pytest.approx(expected, rel=1e-5), key
        assert not state[key.replace('weight', 'sums')].any()

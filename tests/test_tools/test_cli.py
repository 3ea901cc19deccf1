"""The flags of tools/train.py and tools/test.py, as they change the config."""

import os.path as osp

import pytest

from tests.tiny_detector import write_tiny_config
from tests.tool_loader import load_tool


@pytest.fixture(scope='module')
def config(tmp_path_factory):
    return write_tiny_config(str(tmp_path_factory.mktemp('cli') / 'tiny.py'), '/data/shapes')


@pytest.fixture(scope='module')
def train():
    return load_tool('train')


@pytest.fixture(scope='module')
def test():
    return load_tool('test')


def test_train_defaults(train, config):
    cfg = train.build_config(train.parse_args([config]))
    assert cfg.launcher == 'none'
    assert cfg.work_dir == osp.join('./work_dirs', 'tiny')
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert not cfg.get('resume', False) and cfg.get('load_from') is None
    assert not cfg.auto_scale_lr.enable


def test_train_reads_any_mmdet_config(train):
    """A stock MMDetection config (no custom_imports) goes through our tool as well."""
    import mmdet

    config = osp.join(
        osp.dirname(mmdet.__file__), '.mim', 'configs', 'retinanet', 'retinanet_r50_fpn_1x_coco.py'
    )
    if not osp.isfile(config):
        pytest.skip('this mmdet install ships no configs')
    cfg = train.build_config(train.parse_args([config, '--resume']))
    assert cfg.model.bbox_head.type == 'RetinaHead' and cfg.resume
    assert cfg.work_dir == osp.join('./work_dirs', 'retinanet_r50_fpn_1x_coco')


def test_train_flags(train, config):
    cfg = train.build_config(
        train.parse_args(
            [
                config,
                '--work-dir',
                'out',
                '--amp',
                '--auto-scale-lr',
                '--launcher',
                'pytorch',
                '--cfg-options',
                'train_cfg.max_iters=7',
            ]
        )
    )
    assert cfg.work_dir == 'out' and cfg.launcher == 'pytorch'
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.auto_scale_lr.enable
    assert cfg.train_cfg.max_iters == 7


@pytest.mark.parametrize(
    'argv, load_from', [(['--resume'], None), (['--resume', 'a/iter_2.pth'], 'a/iter_2.pth')]
)
def test_train_resume(train, config, argv, load_from):
    cfg = train.build_config(train.parse_args([config] + argv))
    assert cfg.resume is True and cfg.load_from == load_from


def test_train_auto_scale_lr_needs_base_batch_size(train, config):
    args = train.parse_args([config, '--auto-scale-lr', '--cfg-options', 'auto_scale_lr=None'])
    with pytest.raises(KeyError, match='base_batch_size'):
        train.build_config(args)


def test_test_flags(test, config):
    cfg = test.build_config(
        test.parse_args(
            [config, 'model.pth', '--work-dir', 'out', '--show-dir', 'shown', '--wait-time', '0.5']
        )
    )
    assert cfg.load_from == 'model.pth' and cfg.work_dir == 'out'
    vis = cfg.default_hooks.visualization
    assert vis.draw and not vis.show and vis.test_out_dir == 'shown' and vis.wait_time == 0.5


def test_test_out_must_be_pickle(test, config):
    with pytest.raises(SystemExit):
        test.parse_args([config, 'model.pth', '--out', 'results.json'])
    assert test.parse_args([config, 'model.pth', '--out', 'r.pkl']).out == 'r.pkl'


def test_test_tta_defaults_to_flip(test, config):
    cfg = test.build_config(test.parse_args([config, 'model.pth', '--tta']))
    assert cfg.model.type == 'DetTTAModel' and cfg.model.module.type == 'RetinaNet'
    load, tta = cfg.test_dataloader.dataset.pipeline
    assert load.type == 'LoadImageFromFile' and tta.type == 'TestTimeAug'
    resize, annotations, flips, pack = tta.transforms
    assert [t.type for t in resize + annotations] == ['Resize', 'LoadAnnotations']
    assert [(t.type, t.prob) for t in flips] == [('RandomFlip', 1.0), ('RandomFlip', 0.0)]
    assert {'flip', 'flip_direction', 'img_id'} <= set(pack[0].meta_keys)


def test_test_tta_uses_config_pipeline(test, tmp_path):
    config = write_tiny_config(
        str(tmp_path / 'tta.py'),
        '/data/shapes',
        extra=(
            "tta_model = dict(type='DetTTAModel', tta_cfg=dict(max_per_img=7))\n"
            "tta_pipeline = [dict(type='LoadImageFromFile')]\n"
        ),
    )
    cfg = test.build_config(test.parse_args([config, 'model.pth', '--tta']))
    assert [t.type for t in cfg.test_dataloader.dataset.pipeline] == ['LoadImageFromFile']
    assert cfg.model.tta_cfg == dict(max_per_img=7) and cfg.model.module.type == 'RetinaNet'


def test_test_checks_checkpoints_strictly_unless_asked(test, config):
    cfg = test.build_config(test.parse_args([config, 'model.pth']))
    assert cfg.custom_hooks[-1] == dict(type='CheckpointCheckHook', strict=True)
    cfg = test.build_config(test.parse_args([config, 'model.pth', '--no-strict']))
    assert cfg.custom_hooks[-1] == dict(type='CheckpointCheckHook', strict=False)
    assert cfg.custom_hooks[0].type == 'SelfBalanceHook'  # the config's hooks are kept


def test_train_checks_resumed_checkpoints(train, config):
    cfg = train.build_config(train.parse_args([config, '--resume', 'a/iter_2.pth']))
    assert cfg.custom_hooks[-1] == dict(type='CheckpointCheckHook', strict=False)

"""tools/test.py refuses a checkpoint that does not fit the model (unless --no-strict), and
tools/train.py --resume a file without training state, with messages that say so."""

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmdet_alrp.demo import generate_synthetic_shapes
from tests.tiny_detector import write_tiny_config
from tests.tool_loader import load_tool

CLASSIFIER = 'bbox_head.retina_cls.weight'


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """The tiny detector's config on 2 + 2 synthetic images and its 2-iteration checkpoint."""
    tmp = tmp_path_factory.mktemp('checkpoint_checks')
    data = generate_synthetic_shapes(str(tmp / 'data'), num_train=2, num_val=2, image_size=64)
    config = write_tiny_config(str(tmp / 'tiny.py'), data['data_root'])
    cfg = Config.fromfile(config)
    cfg.work_dir = str(tmp / 'work')
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    Runner.from_cfg(cfg).train()
    return config, str(tmp / 'work' / 'iter_2.pth')


def edited(checkpoint: str, path, edit) -> str:
    ckpt = torch.load(checkpoint, weights_only=True)
    edit(ckpt['state_dict'])
    torch.save(ckpt, str(path))
    return str(path)


def test_fitting_checkpoint_is_evaluated(trained, tmp_path):
    config, checkpoint = trained
    load_tool('test').main([config, checkpoint, '--work-dir', str(tmp_path)])


@pytest.mark.parametrize(
    'edit, message',
    [
        (lambda sd: sd.pop(CLASSIFIER), rf'1 model weights missing from it \({CLASSIFIER}\)'),
        (
            lambda sd: sd.update({CLASSIFIER: torch.zeros(5, 16, 3, 3)}),
            rf'1 of another shape \({CLASSIFIER} \(5, 16, 3, 3\) in the checkpoint',
        ),
    ],
)
def test_checkpoint_that_does_not_fit_is_refused(trained, tmp_path, edit, message):
    config, checkpoint = trained
    path = edited(checkpoint, tmp_path / 'bad.pth', edit)
    test = load_tool('test')
    with pytest.raises(ValueError, match=message):
        test.main([config, path, '--work-dir', str(tmp_path / 'strict')])
    if 'missing' in message:  # --no-strict evaluates it (the weight keeps its initialisation)
        test.main([config, path, '--work-dir', str(tmp_path / 'lenient'), '--no-strict'])


@pytest.mark.parametrize('plain', ['state_dict_only', 'bare_state_dict'])
def test_resume_of_a_plain_state_dict_says_so(trained, tmp_path, plain):
    config, checkpoint = trained
    state_dict = torch.load(checkpoint, weights_only=True)['state_dict']
    path = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=state_dict) if plain == 'state_dict_only' else state_dict, path)
    with pytest.raises(ValueError, match='holds no training state to resume'):
        load_tool('train').main([config, '--resume', path, '--work-dir', str(tmp_path / 'w')])


def test_resume_of_a_training_checkpoint_still_works(trained, tmp_path):
    config, checkpoint = trained
    load_tool('train').main(
        [
            config,
            '--resume',
            checkpoint,
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            'train_cfg.max_iters=3',
            'train_cfg.val_interval=3',
        ]
    )
    assert torch.load(str(tmp_path / 'iter_3.pth'), weights_only=True)['meta']['iter'] == 3

"""MMEngine checkpoints load under torch's weights-only unpickler once mmdet_alrp is imported;
other globals stay refused, with an error that names them."""

import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader, Runner

from mmdet_alrp.demo import generate_synthetic_shapes
from mmdet_alrp.engine.checkpoint import MMENGINE_CHECKPOINT_GLOBALS, UnsafeCheckpointError
from tests.tiny_detector import write_tiny_config


class Untrusted:
    """A class that no allow-list knows."""


def global_name(obj) -> str:
    return f'{obj.__module__}.{obj.__qualname__}'


class GetattrUpdate:
    """Pickles as ``getattr(HistoryBuffer, 'update')``: a getattr outside the allowed ones."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, 'update')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A checkpoint of a real (2-iteration) training of the tiny detector."""
    tmp = tmp_path_factory.mktemp('checkpoint')
    data = generate_synthetic_shapes(str(tmp / 'data'), num_train=4, num_val=0, image_size=64)
    cfg = Config.fromfile(write_tiny_config(str(tmp / 'tiny.py'), data['data_root']))
    cfg.work_dir = str(tmp / 'work')
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    Runner.from_cfg(cfg).train()
    return str(tmp / 'work' / 'iter_2.pth')


def test_training_checkpoint_loads_weights_only(checkpoint):
    ckpt = torch.load(checkpoint, weights_only=True)
    assert ckpt['meta']['iter'] == 2
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(checkpoint) == []
    assert CheckpointLoader.load_checkpoint(checkpoint)['meta']['iter'] == 2


def test_allow_list_is_exactly_what_mmengine_writes(checkpoint):
    """Without any one entry of the allow-list the checkpoint does not load."""
    allowed = torch.serialization.get_safe_globals()
    try:
        for entry in MMENGINE_CHECKPOINT_GLOBALS:
            torch.serialization.clear_safe_globals()
            torch.serialization.add_safe_globals(
                [other for other in MMENGINE_CHECKPOINT_GLOBALS if other is not entry]
            )
            with pytest.raises(pickle.UnpicklingError):
                torch.load(checkpoint, weights_only=True)
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(allowed)


def test_unknown_global_is_refused_with_its_name(tmp_path):
    path = str(tmp_path / 'untrusted.pth')
    torch.save(dict(state_dict={}, meta=dict(thing=Untrusted())), path)
    with pytest.raises(pickle.UnpicklingError):  # weights-only loading is still on
        torch.load(path)
    with pytest.raises(UnsafeCheckpointError) as error:
        CheckpointLoader.load_checkpoint(path)
    message = str(error.value)
    assert global_name(Untrusted) in message and path in message
    assert 'torch.serialization.add_safe_globals' in message


def test_getattr_is_allowed_only_for_statistics_methods(tmp_path):
    path = str(tmp_path / 'getattr.pth')
    torch.save(dict(meta=dict(thing=GetattrUpdate())), path)
    with pytest.raises(pickle.UnpicklingError, match=r"getattr\(.*HistoryBuffer.*'update'\)"):
        CheckpointLoader.load_checkpoint(path)


def test_plain_state_dict_and_missing_file(tmp_path):
    path = str(tmp_path / 'weights.pth')
    torch.save(dict(state_dict=dict(w=torch.ones(2))), path)
    assert torch.equal(CheckpointLoader.load_checkpoint(path)['state_dict']['w'], torch.ones(2))
    with pytest.raises(FileNotFoundError):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'missing.pth'))

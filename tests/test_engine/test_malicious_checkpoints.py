"""No code of a checkpoint runs, whatever its format and the way it is loaded: local files, URLs
served from 127.0.0.1, model names resolved to the torch hub cache, a backbone's ``init_cfg``,
``tools/test.py``, ``--resume`` and ``load_from``. Each crafted file would create a marker file
when unpickled; the tests assert that the marker never appears and that the error names the
global the file imports. Legitimate files from the same sources still load."""

import functools
import http.server
import os.path as osp
import pickle
import threading
from urllib.parse import urlparse

import pytest
import torch
from mmengine.runner import CheckpointLoader
from mmengine.runner.checkpoint import get_external_models, get_mmcls_models, get_torchvision_models

from mmdet.registry import MODELS
from mmdet_alrp.demo import generate_synthetic_shapes
from mmdet_alrp.engine.checkpoint import CorruptCheckpointError, UnsafeCheckpointError
from mmdet_alrp.engine.remote_checkpoints import TORCHVISION_URLS
from tests.tiny_detector import write_tiny_config
from tests.tool_loader import load_tool

FORMATS = ('zip', 'legacy', 'raw')
#: How the crafted files' global is named in the errors.
PAYLOAD_GLOBAL = 'builtins.exec'


class CreatesMarker:
    """Unpickled by full pickle, runs ``exec`` of code that creates the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").close()',)


def save(obj, path: str, fmt: str) -> str:
    """``obj`` saved as a torch zip archive, a legacy torch file or a plain pickle."""
    if fmt == 'raw':
        with open(path, 'wb') as f:
            pickle.dump(obj, f)
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=fmt == 'zip')
    return path


@pytest.fixture
def marker(tmp_path):
    path = str(tmp_path / 'MARKER_code_ran')
    yield path
    assert not osp.exists(path), 'the checkpoint ran its code'


@pytest.fixture
def served(tmp_path):
    """A folder served over http by a server on 127.0.0.1 (its base URL)."""
    folder = tmp_path / 'served'
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A temporary TORCH_HOME; returns its torch hub checkpoint cache folder."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    cache = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    assert torch.hub.get_dir() == str(tmp_path / 'torch_home' / 'hub')
    return cache


def evil(marker: str) -> dict:
    return dict(state_dict=dict(w=torch.ones(2)), meta=dict(payload=CreatesMarker(marker)))


def assert_names_payload(error) -> None:
    assert PAYLOAD_GLOBAL in str(error.value)
    assert 'add_safe_globals' in str(error.value)


def cached_name(url: str) -> str:
    return osp.basename(urlparse(url).path)


@pytest.mark.parametrize('fmt', FORMATS)
def test_local_file_is_refused_in_every_format(tmp_path, marker, fmt):
    path = save(evil(marker), str(tmp_path / f'evil_{fmt}.pth'), fmt)
    with pytest.raises(UnsafeCheckpointError) as error:
        CheckpointLoader.load_checkpoint(path)
    assert_names_payload(error)
    assert path in str(error.value)


@pytest.mark.parametrize('protocol', range(pickle.HIGHEST_PROTOCOL + 1))
def test_raw_pickle_of_every_protocol_is_refused(tmp_path, marker, protocol):
    """Protocols 0-2 name the global ``__builtin__ exec`` (GLOBAL), 4-5 push its module and
    name as memoised strings (STACK_GLOBAL): the error names it as Python 3 does."""
    path = str(tmp_path / 'evil.pkl')
    with open(path, 'wb') as f:
        pickle.dump(evil(marker), f, protocol=protocol)
    with pytest.raises(UnsafeCheckpointError) as error:
        CheckpointLoader.load_checkpoint(path)
    assert_names_payload(error)


@pytest.mark.parametrize('fmt', FORMATS)
def test_url_is_refused(served, hub_cache, marker, fmt):
    folder, base = served
    save(evil(marker), str(folder / 'evil.pth'), fmt)
    with pytest.raises(UnsafeCheckpointError) as error:
        CheckpointLoader.load_checkpoint(f'{base}/evil.pth')
    assert_names_payload(error)
    assert osp.isfile(hub_cache / 'evil.pth')  # it went through the torch hub cache
    with pytest.raises(UnsafeCheckpointError):  # and the cached file is refused as well
        CheckpointLoader.load_checkpoint(f'{base}/evil.pth')


@pytest.mark.parametrize(
    'name, url',
    [
        ('torchvision://resnet50', lambda: get_torchvision_urls()['resnet50']),
        ('modelzoo://resnet50', lambda: get_torchvision_urls()['resnet50']),
        ('open-mmlab://resnext101_64x4d', lambda: get_external_models()['resnext101_64x4d']),
        ('openmmlab://resnext101_64x4d', lambda: get_external_models()['resnext101_64x4d']),
        ('mmcls://resnet50', lambda: get_mmcls_models()['resnet50']),
    ],
)
@pytest.mark.parametrize('fmt', FORMATS)
def test_model_name_in_hub_cache_is_refused(hub_cache, marker, name, url, fmt):
    save(evil(marker), str(hub_cache / cached_name(url())), fmt)
    with pytest.raises(UnsafeCheckpointError) as error:
        CheckpointLoader.load_checkpoint(name)
    assert_names_payload(error)


def get_torchvision_urls() -> dict:
    """MMEngine's torchvision names, without importing torchvision."""
    from mmengine.fileio import load

    return load(TORCHVISION_URLS)


BACKBONES = {
    'torchvision://resnet50': dict(type='ResNet', depth=50),
    'open-mmlab://resnext101_64x4d': dict(type='ResNeXt', depth=101, groups=64, base_width=4),
}


def backbone_url(name: str) -> str:
    if name.startswith('torchvision://'):
        return get_torchvision_urls()[name.split('://')[1]]
    return get_external_models()[name.split('://')[1]]


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_backbone_init_cfg_refuses_cached_file(hub_cache, marker, name):
    save(evil(marker), str(hub_cache / cached_name(backbone_url(name))), 'legacy')
    backbone = MODELS.build(
        dict(BACKBONES[name], init_cfg=dict(type='Pretrained', checkpoint=name))
    )
    with pytest.raises(UnsafeCheckpointError) as error:
        backbone.init_weights()
    assert_names_payload(error)


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_pretrained_backbone_still_loads(hub_cache, name):
    """A legitimate (partial) state dict in the cache, under the name the config gives, ends up
    in the backbone."""
    conv1 = torch.randn(64, 3, 7, 7, generator=torch.Generator().manual_seed(0))
    torch.save(
        dict(state_dict={'conv1.weight': conv1}), str(hub_cache / cached_name(backbone_url(name)))
    )
    backbone = MODELS.build(
        dict(BACKBONES[name], init_cfg=dict(type='Pretrained', checkpoint=name))
    )
    backbone.init_weights()
    assert torch.equal(backbone.conv1.weight.detach(), conv1)


def test_legitimate_url_loads_through_the_cache(served, hub_cache):
    folder, base = served
    weights = dict(state_dict=dict(w=torch.arange(3.0)), meta=dict(epoch=1))
    torch.save(weights, str(folder / 'good.pth'))
    loaded = CheckpointLoader.load_checkpoint(f'{base}/good.pth')
    assert torch.equal(loaded['state_dict']['w'], torch.arange(3.0))
    assert loaded['meta'] == dict(epoch=1)
    (folder / 'good.pth').unlink()  # the second load reads the cache
    assert torch.equal(
        CheckpointLoader.load_checkpoint(f'{base}/good.pth')['state_dict']['w'], torch.arange(3.0)
    )


def test_mmcls_name_keeps_the_backbone(hub_cache):
    torch.save(
        dict(state_dict={'backbone.conv1.weight': torch.ones(1), 'head.fc': torch.ones(1)}),
        str(hub_cache / cached_name(get_mmcls_models()['resnet50'])),
    )
    assert list(CheckpointLoader.load_checkpoint('mmcls://resnet50')['state_dict']) == [
        'conv1.weight'
    ]


def test_torchvision_names_need_no_torchvision():
    assert get_torchvision_urls()['resnet50'].endswith('.pth')
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError):
            get_torchvision_models()


@pytest.mark.parametrize('fmt', ['zip', 'legacy'])
def test_empty_and_truncated_files_say_so(tmp_path, fmt):
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(CorruptCheckpointError, match=r'empty \(0 bytes\)'):
        CheckpointLoader.load_checkpoint(str(empty))
    whole = save(dict(state_dict=dict(w=torch.ones(100))), str(tmp_path / 'whole.pth'), fmt)
    data = open(whole, 'rb').read()
    for size in (1, 20, len(data) // 2, len(data) - 3):
        cut = tmp_path / f'cut_{size}.pth'
        cut.write_bytes(data[:size])
        with pytest.raises(CorruptCheckpointError, match='truncated'):
            CheckpointLoader.load_checkpoint(str(cut))


def test_empty_download_says_so(served, hub_cache):
    folder, base = served
    (folder / 'empty.pth').write_bytes(b'')
    with pytest.raises(CorruptCheckpointError, match=r'empty \(0 bytes\)'):
        CheckpointLoader.load_checkpoint(f'{base}/empty.pth')


@pytest.fixture(scope='module')
def tiny_config(tmp_path_factory):
    """The tiny detector's config on 2 + 2 synthetic images."""
    tmp = tmp_path_factory.mktemp('tools')
    data = generate_synthetic_shapes(str(tmp / 'data'), num_train=2, num_val=2, image_size=64)
    return write_tiny_config(str(tmp / 'tiny.py'), data['data_root'])


def test_tools_test_refuses_url(tiny_config, served, hub_cache, marker, tmp_path):
    folder, base = served
    save(evil(marker), str(folder / 'evil.pth'), 'zip')
    with pytest.raises(UnsafeCheckpointError) as error:
        load_tool('test').main([tiny_config, f'{base}/evil.pth', '--work-dir', str(tmp_path)])
    assert_names_payload(error)


@pytest.mark.parametrize('how', ['resume', 'load_from'])
def test_training_refuses_file(tiny_config, marker, tmp_path, how):
    path = save(evil(marker), str(tmp_path / 'evil.pth'), 'legacy')
    argv = [tiny_config, '--work-dir', str(tmp_path / 'work')]
    argv += ['--resume', path] if how == 'resume' else ['--cfg-options', f'load_from={path}']
    with pytest.raises(UnsafeCheckpointError) as error:
        load_tool('train').main(argv)
    assert_names_payload(error)

"""tools/model_converters/convert_paper_checkpoint.py on checkpoints written in the layout of the
paper's released models (paper_checkpoints.py): converted, each model type loads into the model of
its config with no missing or unexpected key, keeps every weight, predicts, and evaluates through
tools/test.py; what is not such a checkpoint is refused with a message, without running code."""

import copy
import json
import os
import os.path as osp
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from tests.tool_loader import load_tool

from .paper_checkpoints import paper_shapes, write_paper_checkpoint

ROOT = Path(__file__).resolve().parents[2]
ROWS = json.loads((ROOT / 'configs' / 'paper_recipes.json').read_text())['rows']

#: One row of every model type (head types, MaxIoU and ATSS anchors, ResNeXt with DCNv2)
MODEL_TYPES = [
    'ap_loss/ap-loss_retinanet_r50_fpn_4xb8-100e_coco-500.py',
    'alrp_loss/alrp-loss_retinanet_r50_fpn_4xb8-100e_coco-500.py',
    'alrp_loss/alrp-loss_retinanet-atss_r50_fpn_4xb8-100e_coco-500.py',
    'alrp_loss/alrp-loss_retinanet-atss_x101-64x4d-mdconv-c3-c5_fpn_4xb4-100e_coco-800.py',
    'fovea/fovea_r50_fpn_4xb8-100e_coco-500.py',
    'ap_loss/ap-loss_fovea_r50_fpn_4xb8-100e_coco-500.py',
    'alrp_loss/alrp-loss_fovea_r50_fpn_4xb8-100e_coco-500.py',
    'faster_rcnn/faster-rcnn_r50_fpn_4xb8-100e_coco-500.py',
    'alrp_loss/alrp-loss_faster-rcnn_r50_fpn_4xb8-100e_coco-500.py',
]
FOVEA_ALRP = 'alrp_loss/alrp-loss_fovea_r50_fpn_4xb8-100e_coco-500.py'
RETINA_ATSS = 'alrp_loss/alrp-loss_retinanet-atss_r50_fpn_4xb8-100e_coco-500.py'
RETINA_MAXIOU = 'alrp_loss/alrp-loss_retinanet_r50_fpn_4xb8-100e_coco-500.py'


@pytest.fixture(scope='module')
def tool():
    return load_tool('convert_paper_checkpoint')


pytestmark = pytest.mark.usefixtures('mmdet_scope_quiet_logs')


def config_path(name: str) -> str:
    return str(ROOT / 'configs' / name)


def our_model(name: str):
    cfg = Config.fromfile(config_path(name))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.init_cfg = None
    model_cfg.backbone.init_cfg = None
    test_cfg = model_cfg.test_cfg.rcnn if 'rcnn' in model_cfg.test_cfg else model_cfg.test_cfg
    test_cfg.score_thr = 0.0  # random weights: keep every box
    return MODELS.build(model_cfg)


def our_key(paper_key: str, name: str) -> str:
    """Our name of a key of the paper's checkpoint of row ``name``: FoveaBox's fovea_cls /
    fovea_reg are conv_cls / conv_reg, RetinaNet-ATSS's retina_cls / retina_reg (our
    aLRPATSSHead) atss_cls / atss_reg."""
    key = paper_key.replace('fovea_cls', 'conv_cls').replace('fovea_reg', 'conv_reg')
    if 'retinanet-atss' in name:
        key = key.replace('retina_cls', 'atss_cls').replace('retina_reg', 'atss_reg')
    return key


def convert(tool, tmp_path, name, *extra, recipe=None, mutate=None):
    paper = str(tmp_path / 'paper.pth')
    checkpoint = write_paper_checkpoint(paper, recipe or ROWS[name]['recipe'])
    if mutate is not None:
        mutate(checkpoint)
        torch.save(checkpoint, paper, _use_new_zipfile_serialization=False)
    out = str(tmp_path / 'converted.pth')
    tool.main([paper, out, *extra])
    return checkpoint, out


@pytest.mark.parametrize('name', MODEL_TYPES)
def test_converted_checkpoint_loads_exactly_and_predicts(tool, tmp_path, name):
    paper, out = convert(tool, tmp_path, name, '--config', config_path(name))
    converted = torch.load(out, weights_only=True)
    assert set(converted) == {'meta', 'state_dict'}  # no optimizer
    assert converted['meta']['dataset_meta']['classes'] == paper['meta']['CLASSES']
    assert converted['meta']['paper_meta']['mmdet_version'] == '2.1.0+5a2c25f'

    model = our_model(name)
    load_checkpoint(model, out, map_location='cpu', strict=True)  # raises on any key mismatch
    state = model.state_dict()
    for key, value in paper['state_dict'].items():
        torch.testing.assert_close(state[our_key(key, name)], value, rtol=0, atol=0)
    model.eval()
    data = demo_mm_inputs(1, (3, 128, 160), num_items=[2])
    with torch.no_grad():
        results = model.test_step(data)
    pred = results[0].pred_instances
    assert 0 < len(pred) <= 100
    assert torch.isfinite(pred.bboxes).all() and ((pred.scores >= 0) & (pred.scores <= 1)).all()


def test_every_row_has_the_paper_layout_of_its_config():
    """The layout the tests write (from the paper's modules) is our models' state dict, less
    the self-balance buffers and with FoveaBox's two renamed convs (and RetinaNet-ATSS's, in
    aLRPATSSHead), for all 14 rows."""
    for name, row in ROWS.items():
        shapes = {our_key(key, name): shape for key, shape in paper_shapes(row['recipe']).items()}
        ours = {
            key: tuple(value.shape)
            for key, value in our_model(name).state_dict().items()
            if 'self_balance' not in key
        }
        assert shapes == ours, name


def test_without_config_the_alrp_heads_get_their_self_balance(tool, tmp_path):
    name = 'alrp_loss/alrp-loss_faster-rcnn_r50_fpn_4xb8-100e_coco-500.py'
    _, out = convert(tool, tmp_path, name)
    model = our_model(name)
    load_checkpoint(model, out, map_location='cpu', strict=True)
    assert model.rpn_head.loss_cls.self_balance.weight.item() == 50


def test_without_config_retinanet_atss_gets_the_names_of_aLRPATSSHead(tool, tmp_path):
    paper, out = convert(tool, tmp_path, RETINA_ATSS)
    model = our_model(RETINA_ATSS)
    load_checkpoint(model, out, map_location='cpu', strict=True)
    torch.testing.assert_close(
        model.bbox_head.atss_cls.weight,
        paper['state_dict']['bbox_head.retina_cls.weight'],
        rtol=0,
        atol=0,
    )
    assert model.bbox_head.loss_cls.self_balance.weight.item() == 50


@pytest.fixture(scope='module')
def converted_fovea(tool, tmp_path_factory):
    """The converted FoveaBox aLRP checkpoint and the --cfg-options of a tiny generated COCO."""
    from tests.test_configs.test_configs import write_tiny_coco

    tmp = tmp_path_factory.mktemp('converted_fovea')
    _, out = convert(tool, tmp, FOVEA_ALRP, '--config', config_path(FOVEA_ALRP))
    write_tiny_coco(tmp / 'coco')
    coco = str(tmp / 'coco')
    options = [
        f'test_dataloader.dataset.data_root={coco}/',
        'test_dataloader.dataset.ann_file=val.json',
        'test_dataloader.dataset.data_prefix.img=val/',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        f'test_evaluator.ann_file={coco}/val.json',
        'model.test_cfg.score_thr=0.0',
    ]
    return out, options


def metrics_of(work_dir: Path) -> dict:
    (metrics,) = [
        path for path in work_dir.rglob('*.json') if path.stem == path.parent.name
    ]  # WORK_DIR/TIMESTAMP/TIMESTAMP.json
    return json.loads(metrics.read_text())


def test_evaluates_through_tools_test(converted_fovea, tmp_path):
    """tools/test.py CONFIG OUT loads the converted model and reports COCO AP and oLRP."""
    out, options = converted_fovea
    load_tool('test').main(
        [config_path(FOVEA_ALRP), out, '--work-dir', str(tmp_path), '--cfg-options', *options]
    )
    values = metrics_of(tmp_path)
    assert 'coco/bbox_mAP' in values and 0 <= values['coco/bbox_moLRP'] <= 1


def test_evaluates_through_mim_test(converted_fovea, tmp_path):
    """mim test mmdet CONFIG --checkpoint OUT (mmdet's own tools/test.py) does the same."""
    out, options = converted_fovea
    env = dict(
        os.environ,
        CUDA_VISIBLE_DEVICES='',
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')])),
    )
    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'mim',
            'test',
            'mmdet',
            config_path(FOVEA_ALRP),
            '--checkpoint',
            out,
            '--gpus',
            '0',
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            *options,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert 'coco/bbox_moLRP' in metrics_of(tmp_path)


def expect_refusal(tool, argv, *words):
    with pytest.raises(SystemExit) as exit_info:
        tool.main(argv)
    message = str(exit_info.value.code)
    assert message.startswith('convert_paper_checkpoint: ')
    for word in words:
        assert word in message, message
    return message


def test_refuses_another_architecture(tool, tmp_path):
    paper = str(tmp_path / 'fovea.pth')
    write_paper_checkpoint(paper, ROWS[FOVEA_ALRP]['recipe'])
    expect_refusal(
        tool,
        [paper, str(tmp_path / 'o.pth'), '--config', config_path(RETINA_ATSS)],
        'another architecture',
        'bbox_head.conv_cls.weight',
    )
    paper = str(tmp_path / 'atss.pth')  # 2 anchors a location into a 6-anchor model
    write_paper_checkpoint(paper, ROWS[RETINA_ATSS]['recipe'])
    expect_refusal(
        tool,
        [paper, str(tmp_path / 'o.pth'), '--config', config_path(RETINA_MAXIOU)],
        'shapes that differ',
        'bbox_head.retina_cls.weight (160, 256, 3, 3) vs (480, 256, 3, 3)',
    )
    assert not (tmp_path / 'o.pth').exists()


def test_refuses_missing_keys(tool, tmp_path):
    def drop_a_key(checkpoint):
        del checkpoint['state_dict']['neck.fpn_convs.4.conv.bias']

    with pytest.raises(SystemExit) as exit_info:
        convert(
            tool, tmp_path, RETINA_ATSS, '--config', config_path(RETINA_ATSS), mutate=drop_a_key
        )
    assert 'lacks keys' in str(exit_info.value.code)
    assert 'neck.fpn_convs.4.conv.bias' in str(exit_info.value.code)


class RunsCode:
    """An object whose unpickling would write a file (pickle calls ``open``)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_refuses_what_is_not_such_a_checkpoint_without_running_it(tool, tmp_path):
    out = str(tmp_path / 'o.pth')
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(np.random.RandomState(0).bytes(1000))
    expect_refusal(tool, [str(garbage), out], 'is not a PyTorch checkpoint')
    expect_refusal(tool, [str(tmp_path / 'absent.pth'), out], 'can not be found')

    marker = tmp_path / 'ran.txt'
    evil = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, meta=dict(x=RunsCode(str(marker)))), evil)
    expect_refusal(tool, [evil, out], 'io.open', 'does not allow')
    assert not marker.exists(), 'the pickled code ran'

    tensor = str(tmp_path / 'tensor.pth')
    torch.save(torch.zeros(3), tensor)
    expect_refusal(tool, [tensor, out], "no 'state_dict'")

    newer = str(tmp_path / 'mmdet3.pth')
    torch.save(dict(meta=dict(mmdet_version='3.3.0'), state_dict={}), newer)
    expect_refusal(tool, [newer, out], 'mmdet 3.3.0')
    assert not osp.exists(out)


def test_the_loader_has_no_pickle_fallback(tool, tmp_path):
    """The pickled code is refused by the weights-only unpickler itself, not by a check after a
    full unpickle."""
    marker = tmp_path / 'ran.txt'
    evil = tmp_path / 'evil.pkl'
    evil.write_bytes(pickle.dumps(dict(state_dict={}, meta=RunsCode(str(marker)))))
    with pytest.raises(tool.ConversionError):
        tool.load_paper_checkpoint(str(evil))
    assert not marker.exists()

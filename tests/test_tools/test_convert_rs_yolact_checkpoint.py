"""tools/model_converters/convert_paper_checkpoint.py on a checkpoint in the layout of the Rank &
Sort Loss paper's RS-YOLACT (its MMDetection 2.8 fork: ResNet-50, FPN P3-P7, RankSortYOLACTHead
and RankSortYOLACTProtonet, 352 keys): converted, it loads into the model of our config with no
missing or unexpected key, keeps every weight and predicts masks; the checkpoint of another
detector is refused."""

from pathlib import Path

import pytest
import torch
from mmengine.runner import load_checkpoint

from mmdet.datasets import CocoDataset
from mmdet.testing import demo_mm_inputs
from tests.tool_loader import load_tool

from .paper_checkpoints import prefixed, random_state_dict, resnet
from .rs_paper_checkpoints import fpn_p3_p7
from .test_convert_paper_checkpoint import config_path, expect_refusal, our_model

YOLACT = 'rank_sort_loss/rank-sort-loss_yolact_r50_1xb8-55e_coco.py'
ATSS = 'rank_sort_loss/rank-sort-loss_atss_r50_fpn_4xb4-1x_coco.py'
#: the fork's head keys and shapes (80 classes, 3 anchors a location, 32 prototypes)
HEADS = {
    'bbox_head.head_convs.0.conv.weight': (256, 256, 3, 3),
    'bbox_head.head_convs.0.conv.bias': (256,),
    'bbox_head.conv_cls.weight': (240, 256, 3, 3),
    'bbox_head.conv_cls.bias': (240,),
    'bbox_head.conv_reg.weight': (12, 256, 3, 3),
    'bbox_head.conv_reg.bias': (12,),
    'bbox_head.conv_coeff.weight': (96, 256, 3, 3),
    'bbox_head.conv_coeff.bias': (96,),
    **{f'mask_head.protonet.{i}.weight': (256, 256, 3, 3) for i in (0, 2, 4, 8)},
    **{f'mask_head.protonet.{i}.bias': (256,) for i in (0, 2, 4, 8)},
    'mask_head.protonet.10.weight': (32, 256, 1, 1),
    'mask_head.protonet.10.bias': (32,),
}

pytestmark = pytest.mark.usefixtures('mmdet_scope_quiet_logs')


@pytest.fixture(scope='module')
def tool():
    return load_tool('convert_paper_checkpoint')


def write_yolact_checkpoint(path: Path, head: str = 'RankSortYOLACTHead') -> dict:
    neck = fpn_p3_p7()
    neck['fpn_convs.3.conv.weight'] = (256, 2048, 3, 3)  # YOLACT's first extra conv: on C5
    shapes = {**prefixed('backbone.', resnet(50)), **prefixed('neck.', neck), **HEADS}
    assert len(shapes) == 352  # the fork's checkpoint: 318 backbone, 16 neck, 18 head keys
    config = (
        "model = dict(\n    type='RankSortYOLACT',\n    neck=dict(type='FPN'),\n"
        f"    bbox_head=dict(type='{head}'),\n"
        "    mask_head=dict(type='RankSortYOLACTProtonet'),\n)\n"
    )
    checkpoint = dict(
        meta=dict(
            config=config,
            mmdet_version='2.8.0b41f64d',
            CLASSES=tuple(CocoDataset.METAINFO['classes']),
            epoch=55,
            iter=0,
        ),
        state_dict=random_state_dict(shapes),
        optimizer=dict(state={}, param_groups=[dict(lr=0.0, momentum=0.9, params=[0, 1])]),
    )
    torch.save(checkpoint, str(path))
    return checkpoint


def test_converted_yolact_loads_exactly_and_predicts_masks(tool, tmp_path):
    paper = write_yolact_checkpoint(tmp_path / 'paper.pth')
    out = str(tmp_path / 'converted.pth')
    tool.main([str(tmp_path / 'paper.pth'), out, '--config', config_path(YOLACT)])
    converted = torch.load(out, weights_only=True)
    assert set(converted) == {'meta', 'state_dict'}
    assert converted['meta']['dataset_meta']['classes'] == paper['meta']['CLASSES']

    model = our_model(YOLACT)
    load_checkpoint(model, out, map_location='cpu', strict=True)
    state = model.state_dict()
    assert set(state) == set(paper['state_dict'])
    for key, value in paper['state_dict'].items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)
    model.eval()
    with torch.no_grad():
        results = model.test_step(demo_mm_inputs(1, (3, 128, 128), num_items=[2]))
    pred = results[0].pred_instances
    assert len(pred) <= 100 and pred.masks.shape == (len(pred), 128, 128)


def test_refuses_yolact_keys_with_another_head(tool, tmp_path):
    paper = tmp_path / 'paper.pth'
    write_yolact_checkpoint(paper, head='RankBasedATSSHead')
    expect_refusal(
        tool,
        [str(paper), str(tmp_path / 'o.pth'), '--config', config_path(YOLACT)],
        "the checkpoint's heads are RankingATSSHead",
        'RankingYOLACTHead',
    )


def test_refuses_yolact_for_an_atss_config(tool, tmp_path):
    paper = tmp_path / 'paper.pth'
    write_yolact_checkpoint(paper)
    expect_refusal(
        tool,
        [str(paper), str(tmp_path / 'o.pth'), '--config', config_path(ATSS)],
        'another architecture',
    )

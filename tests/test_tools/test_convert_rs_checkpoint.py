"""tools/convert_paper_checkpoint.py on checkpoints written in the layout of the Rank & Sort Loss
paper's released models (rs_paper_checkpoints.py, its MMDetection 2.8 fork): converted, every
row's model (Faster R-CNN with and without CARAFE, R101 with DCNv2, Cascade R-CNN, ATSS, PAA)
loads into the model of its config with no missing or unexpected key, keeps every weight and
predicts; a checkpoint of another loss or detector, whose keys may fit, is refused."""

import json
from pathlib import Path

import pytest
import torch
from mmengine.runner import load_checkpoint

from mmdet.testing import demo_mm_inputs
from tests.carafe_on_cpu import carafe_on_cpu  # noqa: F401  (fixture)
from tests.tool_loader import load_tool

from .paper_checkpoints import write_paper_checkpoint
from .rs_paper_checkpoints import rs_paper_shapes, write_rs_paper_checkpoint
from .test_convert_paper_checkpoint import config_path, expect_refusal, our_model

ROOT = Path(__file__).resolve().parents[2]
ROWS = json.loads((ROOT / 'configs' / 'rs_paper_recipes.json').read_text())['rows']
ALRP_ROWS = json.loads((ROOT / 'configs' / 'paper_recipes.json').read_text())['rows']

FASTER = 'rank_sort_loss/rank-sort-loss_faster-rcnn_r50_fpn_4xb4-1x_coco.py'
FASTER_CARAFE = 'rank_sort_loss/rank-sort-loss_faster-rcnn_r50_fpn-carafe_4xb4-1x_coco.py'
CASCADE = 'rank_sort_loss/rank-sort-loss_cascade-rcnn_r50_fpn_4xb4-1x_coco.py'
ATSS = 'rank_sort_loss/rank-sort-loss_atss_r50_fpn_4xb4-1x_coco.py'
PAA = 'rank_sort_loss/rank-sort-loss_paa_r50_fpn_4xb4-1x_coco.py'
ALRP_FASTER = 'alrp_loss/alrp-loss_faster-rcnn_r50_fpn_4xb8-100e_coco-500.py'

pytestmark = pytest.mark.usefixtures('mmdet_scope_quiet_logs', 'carafe_on_cpu')


@pytest.fixture(scope='module')
def tool():
    return load_tool('convert_paper_checkpoint')


def convert(tool, tmp_path, name, *extra):
    paper = str(tmp_path / 'paper.pth')
    checkpoint = write_rs_paper_checkpoint(paper, ROWS[name])
    out = str(tmp_path / 'converted.pth')
    tool.main([paper, out, *extra])
    return checkpoint, out


@pytest.mark.parametrize('name', sorted(ROWS))
def test_converted_checkpoint_loads_exactly_and_predicts(tool, tmp_path, name):
    paper, out = convert(tool, tmp_path, name, '--config', config_path(name))
    converted = torch.load(out, weights_only=True)
    assert set(converted) == {'meta', 'state_dict'}  # no optimizer
    meta = converted['meta']
    assert meta['dataset_meta']['classes'] == paper['meta']['CLASSES']
    assert meta['paper_meta']['mmdet_version'] == '2.8.0b41f64d'
    assert meta['epoch'] == ROWS[name]['recipe']['schedule.total_epochs']

    model = our_model(name)
    load_checkpoint(model, out, map_location='cpu', strict=True)  # raises on any key mismatch
    state = model.state_dict()
    assert set(state) == set(paper['state_dict'])  # the fork's names, every one
    for key, value in paper['state_dict'].items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)
    model.eval()
    data = demo_mm_inputs(1, (3, 128, 160), num_items=[2])
    with torch.no_grad():
        results = model.test_step(data)
    pred = results[0].pred_instances
    assert len(pred) <= 100
    assert torch.isfinite(pred.bboxes).all() and ((pred.scores >= 0) & (pred.scores <= 1)).all()


def test_every_row_has_the_fork_layout_of_its_config():
    """The layout the tests write (from the fork's modules) is our models' state dict, for all
    7 rows, and has the number of keys the recipe file counts for the released models."""
    counts = {FASTER: 348, FASTER_CARAFE: 368, CASCADE: 364, ATSS: 367, PAA: 367}
    for name, row in ROWS.items():
        shapes = rs_paper_shapes(row['recipe'])
        ours = {key: tuple(value.shape) for key, value in our_model(name).state_dict().items()}
        assert shapes == ours, name
        if name in counts:
            assert len(shapes) == counts[name], name


def test_without_config_every_key_is_kept(tool, tmp_path):
    paper, out = convert(tool, tmp_path, CASCADE)
    model = our_model(CASCADE)
    load_checkpoint(model, out, map_location='cpu', strict=True)
    torch.testing.assert_close(
        model.roi_head.bbox_head[2].fc_cls.weight,
        paper['state_dict']['roi_head.bbox_head.2.fc_cls.weight'],
        rtol=0,
        atol=0,
    )


def test_refuses_another_architecture(tool, tmp_path):
    paper = str(tmp_path / 'faster.pth')
    write_rs_paper_checkpoint(paper, ROWS[FASTER])
    expect_refusal(
        tool,
        [paper, str(tmp_path / 'o.pth'), '--config', config_path(FASTER_CARAFE)],
        'another architecture',
        'neck.upsample_modules.0.channel_compressor.weight',
    )
    expect_refusal(
        tool,
        [paper, str(tmp_path / 'o.pth'), '--config', config_path(CASCADE)],
        'another architecture',
        'roi_head.bbox_head.0.fc_cls.weight',
    )
    assert not (tmp_path / 'o.pth').exists()


def test_refuses_a_head_of_another_detector_whose_keys_fit(tool, tmp_path):
    """RS-ATSS and RS-PAA have the same keys: the heads named in the meta tell them apart."""
    paper = str(tmp_path / 'atss.pth')
    write_rs_paper_checkpoint(paper, ROWS[ATSS])
    expect_refusal(
        tool,
        [paper, str(tmp_path / 'o.pth'), '--config', config_path(PAA)],
        "the checkpoint's heads are RankingATSSHead",
        'RankingPAAHead',
    )
    assert not (tmp_path / 'o.pth').exists()


def test_refuses_a_checkpoint_of_the_other_paper(tool, tmp_path):
    """aLRP Loss and RS Faster R-CNN have the same keys (both R-CNN classifiers without a
    background column): an aLRP checkpoint given for an RS config, and the reverse, are
    refused by their heads."""
    alrp = str(tmp_path / 'alrp.pth')
    write_paper_checkpoint(alrp, ALRP_ROWS[ALRP_FASTER]['recipe'])
    expect_refusal(
        tool,
        [alrp, str(tmp_path / 'o.pth'), '--config', config_path(FASTER)],
        "the checkpoint's heads are aLRPBBoxHead, aLRPRPNHead",
        'RankingBBoxHead, RankingRPNHead',
    )
    rs = str(tmp_path / 'rs.pth')
    write_rs_paper_checkpoint(rs, ROWS[FASTER])
    expect_refusal(
        tool,
        [rs, str(tmp_path / 'o.pth'), '--config', config_path(ALRP_FASTER)],
        "the checkpoint's heads are RankingBBoxHead, RankingRPNHead",
        'aLRPBBoxHead, aLRPRPNHead',
    )
    assert not (tmp_path / 'o.pth').exists()

"""tools/model_converters/convert_paper_checkpoint.py on checkpoints written in the layout of the
Rank & Sort Loss paper's released models (rs_paper_checkpoints.py, its MMDetection 2.8 fork):
converted, every row's model (Faster R-CNN with and without CARAFE, R101 with DCNv2, Cascade
R-CNN, ATSS, PAA, Mask R-CNN with R50, R101, R101-DCNv2 and X101-64x4d-DCNv2, with and without
CARAFE, on COCO and LVIS) loads into the model of its config with no missing or unexpected key,
keeps every weight and predicts; a checkpoint of another loss or detector, whose keys may fit,
is refused."""

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
MASK = 'rank_sort_loss/rank-sort-loss_mask-rcnn_r50_fpn_4xb4-1x_coco.py'
MASK_LVIS = (
    'rank_sort_loss/rank-sort-loss_mask-rcnn_r50_fpn_sample1e-3_4xb4-ms-640-800-1x_lvis-v1.py'
)
MASK_R101 = (
    'rank_sort_loss/'
    'rank-sort-loss_mask-rcnn_r101-mdconv-group4-c3-c5_fpn-carafe_4xb4-ms-480-960-3x_coco.py'
)
MASK_X101 = (
    'rank_sort_loss/'
    'rank-sort-loss_mask-rcnn_x101-64x4d-mdconv-group4-c3-c5_fpn-carafe_4xb4-ms-480-960-3x_coco.py'
)
#: the numbers of keys of the released models (state_dict_layout.per_row_key_counts of the RS
#: recipe file), by row
KEY_COUNTS = {
    'rs_faster_rcnn_r50_fpn_1x_coco': 348,
    'rs_faster_rcnn_carafe_r50_fpn_1x_coco': 368,
    'rs_faster_rcnn_r101_dcn_fpn_mstrain_3x_coco': 714,
    'rs_faster_rcnn_carafe_r101_dcn_fpn_mstrain_3x_coco': 734,
    'rs_cascade_rcnn_r50_fpn_1x_coco': 364,
    'rs_atss_r50_fpn_1x_coco': 367,
    'rs_paa_r50_fpn_1x_coco': 367,
    'rs_mask_rcnn_r50_fpn_1x_coco': 360,
    'rs_mask_rcnn_carafe_r50_fpn_1x_coco': 380,
    'rs_mask_rcnn_r101_fpn_mstrain_3x_coco': 666,
    'rs_mask_rcnn_carafe_r101_fpn_mstrain_3x_coco': 686,
    'rs_mask_rcnn_carafe_r101_dcn_fpn_mstrain_3x_coco': 746,
    'rs_mask_rcnn_carafe_x101_64x4d_dcn_fpn_mstrain_3x_coco': 746,
    'rs_mask_rcnn_r50_fpn_mstrain_1x_lvis_v1': 360,
    'rs_yolact_r50_55e_coco': 352,
}

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
    recipe = ROWS[name]['recipe']
    assert len(pred) <= recipe.get('test_cfg.rcnn.max_per_img', recipe.get('test_cfg.max_per_img'))
    assert torch.isfinite(pred.bboxes).all() and ((pred.scores >= 0) & (pred.scores <= 1)).all()
    if 'segm' in recipe['schedule.evaluation.metric']:
        assert pred.masks.shape == (len(pred), 128, 160)


def test_every_row_has_the_fork_layout_of_its_config():
    """The layout the tests write (from the fork's modules) is our models' state dict, for all
    15 rows, and has the number of keys the recipe file counts for the released models."""
    assert sorted(KEY_COUNTS) == sorted(row['row_id'] for row in ROWS.values())
    for name, row in ROWS.items():
        shapes = rs_paper_shapes(row['recipe'])
        ours = {key: tuple(value.shape) for key, value in our_model(name).state_dict().items()}
        assert shapes == ours, name
        assert len(shapes) == KEY_COUNTS[row['row_id']], name


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
    carafe = str(tmp_path / 'carafe.pth')
    write_rs_paper_checkpoint(carafe, ROWS[FASTER_CARAFE])
    expect_refusal(
        tool,
        [carafe, str(tmp_path / 'o.pth'), '--config', config_path(FASTER)],
        'another architecture',
        'neck.upsample_modules.0.channel_compressor.weight',
    )
    faster = str(tmp_path / 'faster.pth')
    write_rs_paper_checkpoint(faster, ROWS[FASTER])
    expect_refusal(
        tool,
        [faster, str(tmp_path / 'o.pth'), '--config', config_path(FASTER_CARAFE)],
        'lacks keys',
        'neck.lateral_convs.4.conv.weight',
    )
    expect_refusal(
        tool,
        [faster, str(tmp_path / 'o.pth'), '--config', config_path(CASCADE)],
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


def test_mask_rcnn_keeps_the_mask_head_weights(tool, tmp_path):
    """The converted mask head is the paper's, weight for weight (the LVIS row: 1203 channels)."""
    paper, out = convert(tool, tmp_path, MASK_LVIS, '--config', config_path(MASK_LVIS))
    converted = torch.load(out, weights_only=True)
    logits = converted['state_dict']['roi_head.mask_head.conv_logits.weight']
    assert logits.shape == (1203, 256, 1, 1)
    torch.testing.assert_close(
        logits, paper['state_dict']['roi_head.mask_head.conv_logits.weight'], rtol=0, atol=0
    )
    assert len(converted['meta']['dataset_meta']['classes']) == 1203


def test_refuses_a_mask_rcnn_of_another_architecture(tool, tmp_path):
    """Mask R-CNN for Faster R-CNN and the reverse, LVIS for COCO, R101 for X101: refused with
    the keys at fault."""
    mask = str(tmp_path / 'mask.pth')
    write_rs_paper_checkpoint(mask, ROWS[MASK])
    expect_refusal(
        tool,
        [mask, str(tmp_path / 'o.pth'), '--config', config_path(FASTER)],
        'another architecture',
        'roi_head.mask_head.conv_logits.weight',
    )
    expect_refusal(
        tool,
        [mask, str(tmp_path / 'o.pth'), '--config', config_path(MASK_LVIS)],
        'shapes that differ',
        'roi_head.mask_head.conv_logits.weight (80, 256, 1, 1) vs (1203, 256, 1, 1)',
    )
    faster = str(tmp_path / 'faster.pth')
    write_rs_paper_checkpoint(faster, ROWS[FASTER])
    expect_refusal(
        tool,
        [faster, str(tmp_path / 'o.pth'), '--config', config_path(MASK)],
        'lacks keys',
        'roi_head.mask_head.conv_logits.weight',
    )
    r101 = str(tmp_path / 'r101.pth')
    write_rs_paper_checkpoint(r101, ROWS[MASK_R101])
    expect_refusal(
        tool,
        [r101, str(tmp_path / 'o.pth'), '--config', config_path(MASK_X101)],
        'shapes that differ',
        'backbone.layer1.0.bn1.weight (64,) vs (256,)',
    )
    assert not (tmp_path / 'o.pth').exists()


def test_refuses_a_mask_head_of_another_loss_whose_keys_fit(tool, tmp_path):
    """The RS Mask R-CNN's keys with a stock FCNMaskHead in the saved config (a Mask R-CNN of
    another loss): refused by its heads."""
    paper = str(tmp_path / 'mask.pth')
    checkpoint = write_rs_paper_checkpoint(paper, ROWS[MASK])
    meta = checkpoint['meta']
    meta['config'] = meta['config'].replace("'RankBasedFCNMaskHead'", "'FCNMaskHead'")
    torch.save(checkpoint, paper)
    expect_refusal(
        tool,
        [paper, str(tmp_path / 'o.pth'), '--config', config_path(MASK)],
        "the checkpoint's heads are FCNMaskHead, RankingBBoxHead, RankingRPNHead",
        'RankingBBoxHead, RankingFCNMaskHead, RankingRPNHead',
    )
    assert not (tmp_path / 'o.pth').exists()

"""tools/model_converters/convert_paper_checkpoint.py refuses a checkpoint in the layout of the
Rank & Sort Loss paper's RS-YOLACT (its MMDetection 2.8 fork: ResNet-50, FPN P3-P7,
RankSortYOLACTHead and RankSortYOLACTProtonet, 352 keys) whose saved config names another head,
and one for the config of another detector. That the paper's RS-YOLACT converts, loads exactly
into our model and predicts masks is tested with every row of the record
(test_convert_rs_checkpoint.py)."""

import json
from pathlib import Path

import pytest

from tests.tool_loader import load_tool

from .rs_paper_checkpoints import write_rs_paper_checkpoint
from .test_convert_paper_checkpoint import config_path, expect_refusal

ROOT = Path(__file__).resolve().parents[2]
YOLACT = 'rank_sort_loss/rank-sort-loss_yolact_r50_1xb8-55e_coco.py'
ATSS = 'rank_sort_loss/rank-sort-loss_atss_r50_fpn_4xb4-1x_coco.py'
ROW = json.loads((ROOT / 'configs' / 'rs_paper_recipes.json').read_text())['rows'][YOLACT]

pytestmark = pytest.mark.usefixtures('mmdet_scope_quiet_logs')


@pytest.fixture(scope='module')
def tool():
    return load_tool('convert_paper_checkpoint')


def test_refuses_yolact_keys_with_another_head(tool, tmp_path):
    paper = str(tmp_path / 'paper.pth')
    recipe = dict(ROW['recipe'], **{'model.bbox_head.type': 'RankBasedATSSHead'})
    write_rs_paper_checkpoint(paper, dict(ROW, recipe=recipe))
    expect_refusal(
        tool,
        [paper, str(tmp_path / 'o.pth'), '--config', config_path(YOLACT)],
        "the checkpoint's heads are RankingATSSHead",
        'RankingYOLACTHead',
    )


def test_refuses_yolact_for_an_atss_config(tool, tmp_path):
    paper = str(tmp_path / 'paper.pth')
    write_rs_paper_checkpoint(paper, ROW)
    expect_refusal(
        tool,
        [paper, str(tmp_path / 'o.pth'), '--config', config_path(ATSS)],
        'another architecture',
    )

"""The aLRP*/APLoss* head names are the loss-neutral Ranking* heads restricted to one loss: the
same parameters and the same losses on the same inputs, their defaults, and a refusal of the
other losses (Rank & Sort Loss included) that names the loss they take."""

import pytest
import torch
from mmengine.config import ConfigDict

from mmdet.registry import MODELS

from .head_utils import (
    ATSS_TRAIN_CFG,
    FOVEA_ARGS,
    GTS,
    IN_CHANNELS,
    MAX_IOU_TRAIN_CFG,
    TEST_CFG,
    instances,
    losses_of,
)

SMALL = dict(
    num_classes=3,
    in_channels=IN_CHANNELS,
    feat_channels=8,
    stacked_convs=1,
    test_cfg=ConfigDict(TEST_CFG),
    init_cfg=None,
)
RPN = dict(
    in_channels=IN_CHANNELS,
    feat_channels=8,
    anchor_generator=dict(type='AnchorGenerator', scales=[4], ratios=[1.0], strides=[8, 16, 32]),
    train_cfg=ConfigDict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
    ),
    test_cfg=ConfigDict(nms_pre=100, max_per_img=20, nms=dict(type='nms', iou_threshold=0.7)),
    init_cfg=None,
)
FCOS = dict(SMALL, norm_cfg=None, strides=[8, 16, 32, 64, 128])
ALRP, AP = dict(type='aLRPLoss'), dict(type='APLoss')

#: old name -> (loss-neutral name, its arguments, the old name's loss)
PAIRS = {
    'aLRPRetinaHead': ('RankingRetinaHead', dict(SMALL, train_cfg=MAX_IOU_TRAIN_CFG), ALRP),
    'APLossRetinaHead': ('RankingRetinaHead', dict(SMALL, train_cfg=MAX_IOU_TRAIN_CFG), AP),
    'aLRPATSSHead': ('RankingATSSHead', dict(SMALL, norm_cfg=None, train_cfg=ATSS_TRAIN_CFG), ALRP),
    'aLRPFCOSHead': ('RankingFCOSHead', FCOS, ALRP),
    'aLRPFoveaHead': ('RankingFoveaHead', dict(SMALL, **FOVEA_ARGS), ALRP),
    'APLossFoveaHead': ('RankingFoveaHead', dict(SMALL, **FOVEA_ARGS), AP),
    'aLRPRPNHead': ('RankingRPNHead', RPN, dict(ALRP, loss_weight=0.2)),
}


def build(name: str, args: dict, **kwargs):
    torch.manual_seed(0)
    if 'train_cfg' in args:
        args = dict(args, train_cfg=ConfigDict(args['train_cfg']))
    return MODELS.build(dict(type=name, **args, **kwargs))


@pytest.mark.parametrize('old', sorted(PAIRS))
def test_old_name_equals_the_ranking_head_with_its_loss(old):
    new, args, loss = PAIRS[old]
    old_head, new_head = build(old, args), build(new, args, loss_cls=loss)
    assert isinstance(old_head, type(new_head)) and type(old_head.loss_cls) is type(
        new_head.loss_cls
    )
    decoded = [getattr(h, 'reg_decoded_bbox', None) for h in (old_head, new_head)]
    assert decoded[0] == decoded[1]
    old_state, new_state = old_head.state_dict(), new_head.state_dict()
    assert list(old_state) == list(new_state)
    assert all(torch.equal(old_state[k], new_state[k]) for k in old_state)
    gts = GTS if old != 'aLRPRPNHead' else [instances(g.bboxes.tolist(), [0] * len(g)) for g in GTS]
    old_losses, new_losses = losses_of(old_head, gts), losses_of(new_head, gts)
    assert list(old_losses) == list(new_losses)
    for key, value in old_losses.items():
        assert torch.equal(value, new_losses[key]), key


@pytest.mark.parametrize('old', sorted(PAIRS))
def test_old_names_refuse_rank_sort_loss(old):
    _, args, loss = PAIRS[old]
    with pytest.raises(
        ValueError, match=f'needs loss_cls=dict\\(type="{loss["type"]}"\\), got RankSortLoss'
    ):
        build(old, args, loss_cls=dict(type='RankSortLoss'))


def test_old_bbox_head_name_equals_the_ranking_bbox_head():
    args = dict(
        in_channels=IN_CHANNELS, fc_out_channels=16, roi_feat_size=7, num_classes=3, init_cfg=None
    )
    old, new = build('aLRPBBoxHead', args), build('RankingBBoxHead', args, loss_cls=ALRP)
    assert isinstance(old, type(new)) and list(old.state_dict()) == list(new.state_dict())
    with pytest.raises(ValueError, match='needs loss_cls=dict\\(type="aLRPLoss"\\)'):
        build('aLRPBBoxHead', args, loss_cls=dict(type='RankSortLoss'))

"""What aLRPATSSHead and aLRPFCOSHead share: mmdet's head (GroupNorm, a learnt scale per level)
without its centerness branch, and aLRP Loss's outputs, gradients, empty ground truth, autocast,
learning and refusal of another loss. Their own targets, oracle and prediction are tested in
test_alrp_atss_head.py and test_alrp_fcos_head.py."""

import pytest
import torch
from mmcv.cnn import Scale

from . import test_alrp_atss_head as atss
from . import test_alrp_fcos_head as fcos
from .head_utils import (
    ALRP_KEYS,
    GTS,
    assert_finite,
    empty_instances,
    feats,
    img_metas,
    instances,
    learns,
    total,
)

# Per head: its test module, and how many levels of GTS hold a positive at the least.
HEADS = {'atss': (atss, 1), 'fcos': (fcos, 2)}


@pytest.fixture(params=sorted(HEADS))
def head_module(request):
    return HEADS[request.param]


def test_losses_are_finite_and_reach_every_parameter(head_module):
    module, levels_with_positives = head_module
    head = module.make_head()
    assert len(head.scales) == len(module.STRIDES) and all(
        isinstance(s, Scale) for s in head.scales
    )
    losses = head.loss_by_feat(*head(feats(module.STRIDES, 2)), GTS, img_metas(2))
    assert set(losses) == ALRP_KEYS
    assert_finite(losses)
    assert losses['num_pos'] > 0 and 0 < losses['loss_cls'] <= 1
    torch.testing.assert_close(losses['loss_bbox'], 50 * losses['alrp_loc'])
    total(losses).backward()
    for name, param in head.named_parameters():
        assert param.grad is not None, f'no gradient reaches {name}'
        # the per-level scales of levels without a positive take a zero gradient
        assert name.startswith('scales.') or param.grad.abs().sum() > 0, name
    reached = sum(p.grad.abs().sum() > 0 for p in head.scales.parameters())
    assert reached >= levels_with_positives


def test_has_no_centerness_branch(head_module):
    module = head_module[0]
    head = module.make_head()
    assert not [name for name, _ in head.named_parameters() if 'centerness' in name]
    assert not hasattr(head, 'conv_centerness')
    outs = head(feats(module.STRIDES))
    assert len(outs) == 2 and len(outs[0]) == len(module.STRIDES)
    assert [o.shape[1] for o in outs[0]] == [3] * len(module.STRIDES)


def test_image_without_ground_truth(head_module):
    module = head_module[0]
    head = module.make_head()
    losses = head.loss_by_feat(*head(feats(module.STRIDES)), [empty_instances()], img_metas())
    assert_finite(losses)
    assert losses['num_pos'] == 0 and losses['loss_cls'] == 0 and losses['loss_bbox'] == 0
    total(losses).backward()
    assert all(p.grad is not None for p in head.parameters())
    losses = head.loss_by_feat(
        *head(feats(module.STRIDES, 2)), [empty_instances(), GTS[0]], img_metas(2)
    )
    assert_finite(losses)
    assert losses['num_pos'] > 0


def test_runs_under_autocast_in_float32(head_module):
    module = head_module[0]
    head = module.make_head()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        cls_scores, bbox_preds = head(feats(module.STRIDES))
        assert cls_scores[0].dtype == torch.bfloat16
        losses = head.loss_by_feat(cls_scores, bbox_preds, GTS[:1], img_metas())
    assert_finite(losses)
    assert losses['loss_bbox'].dtype == torch.float32
    total(losses).backward()


def test_classification_loss_halves_on_one_image(head_module):
    values = learns(
        head_module[0].make_head(num_classes=2),
        [instances([[20.0, 30.0, 70.0, 90.0], [60.0, 8.0, 120.0, 50.0]], [0, 1])],
    )
    assert values[-1] <= 0.5 * values[0], values


def test_refuses_other_losses(head_module):
    with pytest.raises(ValueError, match='aLRPLoss'):
        head_module[0].make_head(loss_cls=dict(type='FocalLoss', use_sigmoid=True))

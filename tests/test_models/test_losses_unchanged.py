"""Every shipped ranking head gives the loss terms, gradients and self-balance state of
head_losses_recorded.pt, recorded by tests/test_models/record_head_losses.py on the same
generated outputs and ground truth."""

from pathlib import Path

import pytest
import torch

from mmdet_alrp.models.dense_heads import (
    APLossFoveaHead,
    APLossRetinaHead,
    aLRPATSSHead,
    aLRPFoveaHead,
    aLRPRetinaHead,
    aLRPRPNHead,
)
from mmdet_alrp.models.roi_heads import aLRPBBoxHead
from tests.test_models.record_head_losses import (
    ATSS_ANCHORS,
    ATSS_CFG,
    BBOX_ARGS,
    CASES,
    FOVEA_ARGS,
    MAX_IOU_CFG,
    RETINA_ARGS,
    RPN_ARGS,
    SMOOTH_L1,
    run_case,
)

RECORDED = Path(__file__).parent / 'head_losses_recorded.pt'
ALRP = dict(
    type='aLRPLoss',
    delta=0.8,
    loss_weight=0.7,
    self_balance=dict(type='SelfBalance', init_weight=40.0),
)

# The heads of the recorded cases as the code builds them: tau and the self-balance in
# aLRPLoss, the AP heads' regression loss in APLoss, RetinaNet-ATSS as aLRPATSSHead.
NEW_HEADS = {
    'alrp_retina_max_iou': lambda: aLRPRetinaHead(
        num_classes=3, train_cfg=MAX_IOU_CFG, loss_cls=dict(ALRP, tau=0.6), **RETINA_ARGS
    ),
    'alrp_retina_atss': lambda: aLRPATSSHead(
        num_classes=3,
        train_cfg=ATSS_CFG,
        loss_cls=dict(type='aLRPLoss', tau=0.5),
        norm_cfg=None,
        scale_per_level=False,
        **dict(RETINA_ARGS, anchor_generator=ATSS_ANCHORS),
    ),
    'alrp_fovea': lambda: aLRPFoveaHead(num_classes=3, loss_cls=dict(ALRP, tau=0.4), **FOVEA_ARGS),
    'alrp_rpn': lambda: aLRPRPNHead(
        loss_cls=dict(type='aLRPLoss', loss_weight=0.2, tau=0.7), **RPN_ARGS
    ),
    'ap_loss_retina': lambda: APLossRetinaHead(
        num_classes=3,
        train_cfg=MAX_IOU_CFG,
        loss_cls=dict(type='APLoss', delta=0.9, loss_bbox=SMOOTH_L1),
        **RETINA_ARGS,
    ),
    'ap_loss_fovea': lambda: APLossFoveaHead(
        num_classes=3, loss_cls=dict(type='APLoss', loss_bbox=SMOOTH_L1), **FOVEA_ARGS
    ),
    'alrp_bbox': lambda: aLRPBBoxHead(loss_cls=dict(ALRP, tau=0.55), **BBOX_ARGS),
    'alrp_bbox_class_agnostic': lambda: aLRPBBoxHead(reg_class_agnostic=True, **BBOX_ARGS),
}


def assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """Equal within 1e-6 of the recorded tensor's scale (its largest magnitude, at least 1)."""
    assert actual.shape == expected.shape, what
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    torch.testing.assert_close(
        actual.double(), expected.double(), rtol=0, atol=1e-6 * scale, msg=lambda m: f'{what}: {m}'
    )


@pytest.fixture(scope='module')
def recorded():
    return torch.load(RECORDED)


def test_every_case_is_recorded(recorded):
    assert set(recorded) == set(CASES) == set(NEW_HEADS)


@pytest.mark.parametrize('name', sorted(CASES))
def test_losses_and_gradients_unchanged(recorded, name):
    torch.manual_seed(0)
    old, new = recorded[name], run_case(name, NEW_HEADS[name]())
    assert_close(new['checksum'], old['checksum'], 'the generated outputs')
    assert set(new['terms']) == set(old['terms'])
    for key, value in old['terms'].items():
        assert_close(new['terms'][key], value, key)
    assert set(new['grads']) == set(old['grads'])
    for key, grads in old['grads'].items():
        assert len(new['grads'][key]) == len(grads)
        for index, (actual, expected) in enumerate(zip(new['grads'][key], grads)):
            assert_close(actual, expected, f'gradient of {key} w.r.t. output {index}')
    assert len(new['self_balance']) == len(old['self_balance'])
    for actual, expected in zip(new['self_balance'], old['self_balance']):
        assert_close(actual, expected, 'self-balance buffer')

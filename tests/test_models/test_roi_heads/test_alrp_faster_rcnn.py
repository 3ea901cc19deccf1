"""The aLRP Faster R-CNN config builds a detector that trains and predicts (ResNet-18, no
pretrained weights)."""

from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from mmdet.registry import HOOKS, MODELS
from mmdet.testing import demo_mm_inputs
from mmdet_alrp.models.dense_heads.alrp_rpn_head import aLRPRPNHead
from mmdet_alrp.models.losses import SelfBalance
from mmdet_alrp.models.roi_heads import aLRPBBoxHead

CONFIG = (
    Path(__file__).parents[3]
    / 'configs'
    / 'alrp_loss'
    / 'alrp-loss_faster-rcnn_r50_fpn_4xb8-100e_coco-500.py'
)


def small_model_cfg():
    cfg = Config.fromfile(str(CONFIG))
    model = cfg.model
    model.backbone.update(depth=18, init_cfg=None)
    model.neck.in_channels = [64, 128, 256, 512]
    for proposal_cfg in (model.train_cfg.rpn_proposal, model.test_cfg.rpn):
        proposal_cfg.update(nms_pre=300, max_per_img=100)
    return cfg


def test_config_wiring():
    cfg = Config.fromfile(str(CONFIG))
    assert [h.type for h in cfg.custom_hooks] == ['SelfBalanceHook']
    assert HOOKS.get('SelfBalanceHook') is not None
    model = cfg.model
    assert model.rpn_head.loss_cls == dict(type='aLRPLoss', loss_weight=0.2, tau=0.7)
    assert model.roi_head.bbox_head.loss_cls == dict(type='aLRPLoss', tau=0.5)
    assert model.train_cfg.rpn.sampler == dict(type='PseudoSampler')
    assert model.train_cfg.rcnn.sampler == dict(type='PseudoSampler')
    assert model.train_cfg.rpn.assigner.pos_iou_thr == 0.7
    assert model.train_cfg.rpn.assigner.neg_iou_thr == 0.3


def test_train_step_and_predict():
    torch.manual_seed(0)
    detector = MODELS.build(small_model_cfg().model)
    assert isinstance(detector.rpn_head, aLRPRPNHead)
    assert isinstance(detector.roi_head.bbox_head, aLRPBBoxHead)
    assert detector.rpn_head.loss_cls.loss_weight == 0.2
    assert sum(isinstance(m, SelfBalance) for m in detector.modules()) == 2

    packed = demo_mm_inputs(2, [[3, 128, 128], [3, 125, 130]], num_items=[3, 2])
    data = detector.data_preprocessor(packed, True)
    losses = detector.forward(**data, mode='loss')
    expected = {
        'loss_rpn_cls',
        'loss_rpn_bbox',
        'rpn_alrp_cls',
        'rpn_alrp_loc',
        'rpn_sb_weight',
        'rpn_num_pos',
        'loss_cls',
        'loss_bbox',
        'alrp_cls',
        'alrp_loc',
        'sb_weight',
        'num_pos',
    }
    assert set(losses) == expected
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert losses['rpn_num_pos'].item() > 0

    optim_wrapper = OptimWrapper(torch.optim.SGD(detector.parameters(), lr=0.001))
    log_vars = detector.train_step(packed, optim_wrapper)
    assert torch.isfinite(log_vars['loss'])
    assert detector.rpn_head.loss_cls.self_balance.sums[2].item() == 2  # two training batches seen

    detector.eval()
    with torch.no_grad():
        results = detector.forward(**detector.data_preprocessor(packed, False), mode='predict')
    assert len(results) == 2
    for result in results:
        pred = result.pred_instances
        num = len(pred)
        assert pred.bboxes.shape == (num, 4) and pred.labels.shape == (num,)
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
        assert ((pred.labels >= 0) & (pred.labels < 80)).all()

"""aLRP Cascade R-CNN: mmdet's CascadeRoIHead with an aLRPBBoxHead in each of its three stages,
as configs/alrp_loss/alrp-loss_cascade-rcnn_r50_fpn_4xb8-100e_coco-500.py wires it.

Each stage's loss and gradients against the dense oracle on the RoIs the stage saw (labels from
IoU with the boxes, computed here), the refinement between stages, a SelfBalance per stage that
SelfBalanceHook updates, the stage keys, and prediction by the sigmoid of the stages' mean
logits. The stages have no ignore band (negative IoU threshold = positive one, no ignored
boxes): every RoI is a positive or a negative, which the oracle test checks."""

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.testing import demo_mm_inputs
from mmdet_alrp.engine.hooks import SelfBalanceHook
from mmdet_alrp.models.losses import SelfBalance, aLRPLoss
from mmdet_alrp.models.roi_heads import aLRPBBoxHead

from ..alrp_head_oracle import assert_matches_oracle, onehot_labels

CONFIGS = Path(__file__).parents[3] / 'configs' / 'alrp_loss'
CONFIG = CONFIGS / 'alrp-loss_cascade-rcnn_r50_fpn_4xb8-100e_coco-500.py'
FASTER = CONFIGS / 'alrp-loss_faster-rcnn_r50_fpn_4xb8-100e_coco-500.py'

IOU_THRS = [0.5, 0.6, 0.7]
STDS = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
STAGE_WEIGHTS = [1, 0.5, 0.25]
ALRP_KEYS = ('loss_cls', 'loss_bbox', 'alrp_cls', 'alrp_loc', 'sb_weight', 'num_pos')
IMG_SIZE = 128
CHANNELS = 8
NUM_CLASSES = 3

GT_BOXES = [
    torch.tensor([[20.0, 30.0, 70.0, 90.0], [60.0, 8.0, 120.0, 50.0]]),
    torch.tensor([[10.0, 10.0, 100.0, 110.0]]),
]
GT_LABELS = [torch.tensor([0, 2]), torch.tensor([1])]


def small_roi_head():
    """The config's CascadeRoIHead with 8 feature channels, fcs of 32 and 3 classes."""
    cfg = Config.fromfile(str(CONFIG)).model
    roi_head = copy.deepcopy(cfg.roi_head)
    roi_head.bbox_roi_extractor.out_channels = CHANNELS
    for head in roi_head.bbox_head:
        head.update(in_channels=CHANNELS, fc_out_channels=32, num_classes=NUM_CLASSES)
    torch.manual_seed(0)
    return MODELS.build(dict(roi_head, train_cfg=cfg.train_cfg.rcnn, test_cfg=cfg.test_cfg.rcnn))


def features(num_imgs: int = 2, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.rand(num_imgs, CHANNELS, IMG_SIZE // s, IMG_SIZE // s, generator=gen)
        for s in (4, 8, 16, 32)
    )


def proposals(seed: int = 0):
    """Per image: 16 jittered copies of each box (IoU about 0.4 to 1) and 24 random boxes."""
    gen = torch.Generator().manual_seed(seed)
    result = []
    for boxes in GT_BOXES:
        wh = (boxes[:, 2:] - boxes[:, :2]).repeat_interleave(16, 0)
        jitter = 0.15 * wh.repeat(1, 2) * (2 * torch.rand(len(wh), 4, generator=gen) - 1)
        near = boxes.repeat_interleave(16, 0) + jitter
        corner = torch.rand(24, 2, generator=gen) * 96
        far = torch.cat([corner, corner + 8 + 24 * torch.rand(24, 2, generator=gen)], 1)
        bboxes = torch.cat([near, far]).clamp(0, IMG_SIZE)
        result.append(InstanceData(bboxes=bboxes, scores=torch.rand(len(bboxes), generator=gen)))
    return result


def data_samples(num_imgs: int = 2):
    samples = []
    for boxes, labels in zip(GT_BOXES[:num_imgs], GT_LABELS[:num_imgs]):
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(IMG_SIZE, IMG_SIZE),
                ori_shape=(IMG_SIZE, IMG_SIZE),
                scale_factor=(1.0, 1.0),
            )
        )
        sample.gt_instances = InstanceData(bboxes=boxes, labels=labels)
        samples.append(sample)
    return samples


class StageRecorder:
    """Records the RoIs (R, 5) and the outputs (cls_score, bbox_pred) of every stage."""

    def __init__(self, roi_head):
        self.rois, self.outputs = [[] for _ in IOU_THRS], [[] for _ in IOU_THRS]
        self.handles = []
        for stage, (extractor, head) in enumerate(
            zip(roi_head.bbox_roi_extractor, roi_head.bbox_head)
        ):
            self.handles.append(
                extractor.register_forward_pre_hook(
                    lambda _, args, stage=stage: self.rois[stage].append(args[1])
                )
            )
            self.handles.append(
                head.register_forward_hook(
                    lambda _, args, out, stage=stage: self.outputs[stage].append(out)
                )
            )

    def remove(self):
        for handle in self.handles:
            handle.remove()


def iou(boxes: torch.Tensor, gts: torch.Tensor) -> torch.Tensor:
    """IoU matrix (R, G) by the definition."""
    lt = torch.max(boxes[:, None, :2], gts[None, :, :2])
    rb = torch.min(boxes[:, None, 2:], gts[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = (boxes[:, 2:] - boxes[:, :2]).prod(-1)
    gt_area = (gts[:, 2:] - gts[:, :2]).prod(-1)
    return inter / (area[:, None] + gt_area[None] - inter)


def decode(rois: torch.Tensor, deltas: torch.Tensor, stds) -> torch.Tensor:
    """DeltaXYWHBBoxCoder with means 0, written out (no clipping)."""
    deltas = deltas * deltas.new_tensor(stds)
    centres, wh = (rois[:, :2] + rois[:, 2:]) / 2, rois[:, 2:] - rois[:, :2]
    centres, wh = centres + deltas[:, :2] * wh, wh * deltas[:, 2:].exp()
    return torch.cat([centres - wh / 2, centres + wh / 2], 1)


def stage_targets(rois: torch.Tensor, iou_thr: float):
    """Class of every RoI (NUM_CLASSES for a negative) and its box's target, by the assigner's
    rule with pos = neg = min_pos IoU threshold: the box of highest IoU if >= iou_thr."""
    classes = torch.full((len(rois),), NUM_CLASSES, dtype=torch.long)
    targets = torch.zeros(len(rois), 4, dtype=torch.float64)
    for image, (boxes, labels) in enumerate(zip(GT_BOXES, GT_LABELS)):
        mine = rois[:, 0] == image
        best, index = iou(rois[mine, 1:].double(), boxes.double()).max(1)
        classes[mine] = torch.where(best >= iou_thr, labels[index], NUM_CLASSES)
        targets[mine] = boxes.double()[index]
    return classes, targets


def test_config_gives_each_stage_its_own_alrp_loss_tau_and_assigner():
    cfg = Config.fromfile(str(CONFIG))
    model, faster = cfg.model, Config.fromfile(str(FASTER)).model
    assert model.type == 'CascadeRCNN' and model.roi_head.type == 'RankingCascadeRoIHead'
    assert model.roi_head.num_stages == 3
    assert model.roi_head.stage_loss_weights == STAGE_WEIGHTS
    assert [h.type for h in model.roi_head.bbox_head] == ['aLRPBBoxHead'] * 3
    assert [h.loss_cls for h in model.roi_head.bbox_head] == [
        dict(type='aLRPLoss', tau=thr) for thr in IOU_THRS
    ]
    assert [h.bbox_coder.target_stds for h in model.roi_head.bbox_head] == STDS
    assert all(h.reg_decoded_bbox and h.reg_class_agnostic for h in model.roi_head.bbox_head)
    for thr, stage in zip(IOU_THRS, model.train_cfg.rcnn):
        assigner = stage.assigner
        assert (assigner.pos_iou_thr, assigner.neg_iou_thr, assigner.min_pos_iou) == (thr,) * 3
        assert not assigner.match_low_quality
        assert stage.sampler == dict(type='PseudoSampler')
    # the aLRP RPN of the Faster R-CNN row, as it is
    assert model.rpn_head == faster.rpn_head
    assert model.train_cfg.rpn == faster.train_cfg.rpn
    assert model.train_cfg.rpn_proposal == faster.train_cfg.rpn_proposal
    assert [h.type for h in cfg.custom_hooks] == ['SelfBalanceHook']


def test_stage_losses_match_the_oracle_and_stages_refine_the_rois():
    roi_head = small_roi_head()
    roi_head.train()
    recorder = StageRecorder(roi_head)
    losses = roi_head.loss(features(), proposals(), data_samples())
    recorder.remove()
    assert set(losses) == {f's{stage}.{key}' for stage in range(3) for key in ALRP_KEYS}

    for stage, (thr, stds, weight) in enumerate(zip(IOU_THRS, STDS, STAGE_WEIGHTS)):
        (rois,), ((cls_score, bbox_pred),) = recorder.rois[stage], recorder.outputs[stage]
        classes, targets = stage_targets(rois, thr)
        pos = classes < NUM_CLASSES
        assert pos.sum() >= 8 and (~pos).sum() >= 24, (stage, pos.sum())
        stage_losses = {key: losses[f's{stage}.{key}'] for key in ALRP_KEYS}
        assert stage_losses['sb_weight'] == 50
        torch.testing.assert_close(stage_losses['loss_cls'], weight * stage_losses['alrp_cls'])
        assert_matches_oracle(
            stage_losses,
            [cls_score, bbox_pred],
            cls_score.double(),
            onehot_labels(classes, NUM_CLASSES),
            decode(rois[pos, 1:].double(), bbox_pred[pos].double(), stds),
            targets[pos],
            tau=thr,
            loss_weight=weight,
        )
        if stage < 2:  # the next stage's RoIs are this stage's boxes, clipped to the image
            refined = decode(rois[:, 1:], bbox_pred.detach(), stds).clamp(0, IMG_SIZE)
            expected = torch.cat([rois[:, :1], refined], 1)
            torch.testing.assert_close(
                recorder.rois[stage + 1][0].unique(dim=0), expected.unique(dim=0)
            )


def test_each_stage_has_its_own_self_balance_that_the_hook_updates():
    roi_head = small_roi_head()
    losses_of_stages = [head.loss_cls for head in roi_head.bbox_head]
    assert all(isinstance(head, aLRPBBoxHead) for head in roi_head.bbox_head)
    assert all(isinstance(loss, aLRPLoss) for loss in losses_of_stages)
    assert [loss.tau for loss in losses_of_stages] == IOU_THRS
    balances = [m for m in roi_head.modules() if isinstance(m, SelfBalance)]
    assert balances == [loss.self_balance for loss in losses_of_stages]
    assert len({id(b) for b in balances}) == 3
    assert sorted(key for key in roi_head.state_dict() if 'self_balance' in key) == [
        f'bbox_head.{stage}.loss_cls.self_balance.{name}'
        for stage in range(3)
        for name in ('sums', 'weight')
    ]

    roi_head.train()
    losses = roi_head.loss(features(), proposals(), data_samples())
    assert all(b.sums[2].item() == 1 for b in balances)
    runner = SimpleNamespace(model=roi_head, iter=0, train_dataloader=[None])
    SelfBalanceHook().after_train_iter(runner, batch_idx=0)
    for stage, balance in enumerate(balances):
        cls, loc = (losses[f's{stage}.alrp_{part}'].item() for part in ('cls', 'loc'))
        assert balance.weight.item() == pytest.approx((cls + loc) / loc, rel=1e-6)
        assert not balance.sums.any()
    assert len({b.weight.item() for b in balances}) == 3


def test_predict_scores_by_the_sigmoid_of_the_stages_mean_logits():
    roi_head = small_roi_head()
    roi_head.eval()
    metas = [s.metainfo for s in data_samples()]
    recorder = StageRecorder(roi_head)
    with torch.no_grad():
        raw = roi_head.predict_bbox(features(), metas, proposals(), rcnn_test_cfg=None)
    recorder.remove()
    assert [len(out) for out in recorder.outputs] == [1, 1, 1]
    logits = torch.stack([out[0][0] for out in recorder.outputs]).mean(0)
    scores = torch.cat([r.scores for r in raw])
    assert scores.shape == (len(logits), NUM_CLASSES)
    torch.testing.assert_close(scores, logits.sigmoid())

    # after NMS: each detection's score is the sigmoid of one RoI's mean logit of its class
    per_image = logits.sigmoid().split([len(p) for p in proposals()])
    with torch.no_grad():
        results = roi_head.predict(features(), proposals(), data_samples())
    for pred, image_scores in zip(results, per_image):
        num = len(pred)
        assert 0 < num <= 100
        assert pred.bboxes.shape == (num, 4) and pred.labels.shape == (num,)
        assert ((pred.labels >= 0) & (pred.labels < NUM_CLASSES)).all()
        candidates = image_scores[:, pred.labels].T  # (num, R)
        assert ((candidates - pred.scores[:, None]).abs().min(1).values < 1e-6).all()


def test_detector_trains_a_step_with_the_rpn_and_stage_keys():
    """The whole config (a ResNet-18 of 16 base channels, 32-channel FPN, no pretrained
    weights): the RPN's aLRP terms and each stage's, keyed s0. / s1. / s2., finite; a train
    step; four SelfBalances."""
    cfg = Config.fromfile(str(CONFIG)).model
    cfg.backbone.update(depth=18, base_channels=16, init_cfg=None)
    cfg.neck.update(in_channels=[16, 32, 64, 128], out_channels=32)
    cfg.rpn_head.update(in_channels=32, feat_channels=32)
    cfg.roi_head.bbox_roi_extractor.out_channels = 32
    for head in cfg.roi_head.bbox_head:
        head.update(in_channels=32, fc_out_channels=64)
    cfg.train_cfg.rpn_proposal.update(nms_pre=300, max_per_img=100)
    cfg.test_cfg.rpn.update(nms_pre=300, max_per_img=100)
    torch.manual_seed(0)
    detector = MODELS.build(cfg)
    assert sum(isinstance(m, SelfBalance) for m in detector.modules()) == 4
    packed = demo_mm_inputs(2, [[3, 128, 128], [3, 125, 130]], num_items=[3, 2])
    losses = detector.forward(**detector.data_preprocessor(packed, True), mode='loss')
    rpn = {
        'loss_rpn_cls',
        'loss_rpn_bbox',
        'rpn_alrp_cls',
        'rpn_alrp_loc',
        'rpn_sb_weight',
        'rpn_num_pos',
    }
    assert set(losses) == rpn | {f's{stage}.{key}' for stage in range(3) for key in ALRP_KEYS}
    assert all(torch.isfinite(v).all() for v in losses.values())
    optim_wrapper = OptimWrapper(torch.optim.SGD(detector.parameters(), lr=0.001))
    assert torch.isfinite(detector.train_step(packed, optim_wrapper)['loss'])

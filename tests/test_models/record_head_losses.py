"""Records the loss terms and gradients of every shipped ranking head on fixed generated outputs.

Run on the code of a commit (``PYTHONPATH=<its checkout> python
tests/test_models/record_head_losses.py OUT.pt``) to store, per case, the terms the head's loss
returns, the gradient of their sum and of each ``loss*`` term with respect to every head output,
and the self-balance buffers after the call (train mode). ``test_losses_unchanged.py`` builds
the heads of the current code on the same cases and compares. The head outputs and the ground
truth depend only on the shapes and the seeds below, not on the head's layers.
"""

import math
import sys
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor, nn

IN_CHANNELS = 8
NUM_IMGS = 3  # the last image has no ground truth
STDS = [0.1, 0.1, 0.2, 0.2]
TEST_CFG = ConfigDict(
    nms_pre=1000,
    min_bbox_size=0,
    score_thr=0.05,
    nms=dict(type='nms', iou_threshold=0.5),
    max_per_img=100,
)
MAX_IOU_CFG = ConfigDict(
    assigner=dict(
        type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0, ignore_iof_thr=0.5
    ),
    sampler=dict(type='PseudoSampler'),
    allowed_border=-1,
    pos_weight=-1,
    debug=False,
)
ATSS_CFG = ConfigDict(
    assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1, pos_weight=-1, debug=False
)
RPN_CFG = ConfigDict(
    assigner=dict(
        type='MaxIoUAssigner',
        pos_iou_thr=0.7,
        neg_iou_thr=0.3,
        min_pos_iou=0.3,
        match_low_quality=True,
        ignore_iof_thr=-1,
    ),
    sampler=dict(type='PseudoSampler'),
    allowed_border=-1,
    pos_weight=-1,
    debug=False,
)
RPN_TEST_CFG = ConfigDict(
    nms_pre=200, max_per_img=50, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0
)
# The heads' layers and targets, shared by the recording and the current constructors.
RETINA_ARGS = dict(
    in_channels=IN_CHANNELS,
    feat_channels=8,
    stacked_convs=1,
    anchor_generator=dict(
        type='AnchorGenerator',
        octave_base_scale=4,
        scales_per_octave=2,
        ratios=[0.5, 1.0, 2.0],
        strides=[8, 16, 32, 64, 128],
    ),
    bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=STDS),
    test_cfg=TEST_CFG,
    init_cfg=None,
)
ATSS_ANCHORS = dict(
    type='AnchorGenerator',
    octave_base_scale=4,
    scales_per_octave=2,
    ratios=[1.0],
    strides=[8, 16, 32, 64, 128],
)
FOVEA_ARGS = dict(
    in_channels=IN_CHANNELS,
    feat_channels=8,
    stacked_convs=1,
    strides=[8, 16, 32, 64, 128],
    base_edge_list=[16, 32, 64, 128, 256],
    scale_ranges=((1, 64), (32, 128), (64, 256), (128, 512), (256, 2048)),
    sigma=0.4,
    with_deform=False,
    test_cfg=TEST_CFG,
    init_cfg=None,
)
RPN_ARGS = dict(
    in_channels=IN_CHANNELS,
    feat_channels=8,
    anchor_generator=dict(
        type='AnchorGenerator', scales=[4], ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16]
    ),
    bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=STDS),
    train_cfg=RPN_CFG,
    test_cfg=RPN_TEST_CFG,
    init_cfg=None,
)
BBOX_ARGS = dict(
    in_channels=IN_CHANNELS,
    fc_out_channels=16,
    roi_feat_size=7,
    num_classes=3,
    bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=STDS),
    init_cfg=None,
)
SMOOTH_L1 = dict(type='SmoothL1Loss', beta=0.11, loss_weight=1.5)
NUM_ROIS = 40


def img_metas(size: int) -> List[dict]:
    return [
        dict(
            img_shape=(size, size),
            pad_shape=(size, size),
            batch_input_shape=(size, size),
            scale_factor=(1.0, 1.0),
        )
        for _ in range(NUM_IMGS)
    ]


def ground_truth(size: int, num_classes: int) -> Tuple[List[InstanceData], List[InstanceData]]:
    """Per image its gt instances and the instances to ignore: image 0 two boxes, image 1 one
    large box and one box to ignore, image 2 none."""

    def inst(boxes, labels):
        boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4) * size
        return InstanceData(bboxes=boxes, labels=torch.tensor(labels, dtype=torch.long))

    last = num_classes - 1
    gts = [
        inst([[0.15, 0.25, 0.55, 0.7], [0.45, 0.05, 0.95, 0.4]], [0, last]),
        inst([[0.08, 0.1, 0.8, 0.85]], [min(1, last)]),
        inst([], []),
    ]
    ignored = [inst([], []), inst([[0.6, 0.55, 0.95, 0.95]], [0]), inst([], [])]
    return gts, ignored


def dense_outputs(head: nn.Module, size: int, seed: int) -> Tuple[List[Tensor], List[Tensor]]:
    """Seeded random tensors of the shapes of the head's classification and regression outputs
    for :data:`NUM_IMGS` images of ``size`` x ``size`` (feature maps of ceil(size / stride))."""
    strides = [s[0] if isinstance(s, tuple) else s for s in head.prior_generator.strides]
    feats = [
        torch.zeros(NUM_IMGS, IN_CHANNELS, math.ceil(size / s), math.ceil(size / s))
        for s in strides
    ]
    with torch.no_grad():
        outputs = head(feats)
    gen = torch.Generator().manual_seed(seed)
    cls_scores = [
        (torch.randn(o.shape, generator=gen) * 1.5 - 1).requires_grad_() for o in outputs[0]
    ]
    bbox_preds = [(torch.randn(o.shape, generator=gen) * 0.3).requires_grad_() for o in outputs[1]]
    return cls_scores, bbox_preds


def roi_inputs(head: nn.Module, seed: int) -> Tuple[List[Tensor], tuple]:
    """Seeded outputs ``[cls_score, bbox_pred]`` of the RoI head for :data:`NUM_ROIS` RoIs of
    3 images (the last without a positive) and the other arguments of its ``loss``."""
    with torch.no_grad():
        shapes = [o.shape for o in head(torch.zeros(NUM_ROIS, IN_CHANNELS, 7, 7))]
    gen = torch.Generator().manual_seed(seed)
    cls_score = (torch.randn(shapes[0], generator=gen) * 1.5 - 1).requires_grad_()
    bbox_pred = (torch.randn(shapes[1], generator=gen) * 0.3).requires_grad_()
    images = torch.arange(NUM_ROIS) * 3 // NUM_ROIS
    corners = torch.rand(NUM_ROIS, 2, generator=gen) * 30
    rois = torch.cat(
        [
            images[:, None].float(),
            corners,
            corners + 10 + torch.rand(NUM_ROIS, 2, generator=gen) * 30,
        ],
        1,
    )
    labels = torch.randint(0, 3, (NUM_ROIS,), generator=gen)
    labels[torch.rand(NUM_ROIS, generator=gen) < 0.6] = 3
    labels[images == 2] = 3
    bbox_targets = rois[:, 1:] + torch.randn(NUM_ROIS, 4, generator=gen) * 3
    bbox_targets[:, 2:] = torch.maximum(bbox_targets[:, 2:], bbox_targets[:, :2] + 1)
    bbox_targets[labels == 3] = 0
    return [cls_score, bbox_pred], (
        rois,
        labels,
        torch.ones(NUM_ROIS),
        bbox_targets,
        torch.ones(NUM_ROIS, 4),
    )


def self_balance_buffers(head: nn.Module) -> List[Tensor]:
    """``weight`` and ``sums`` of every SelfBalance of the head, in module order."""
    return [
        buf.detach().clone()
        for module in head.modules()
        if type(module).__name__ == 'SelfBalance'
        for buf in (module.weight, module.sums)
    ]


def record(head: nn.Module, losses: Dict[str, Tensor], outputs: List[Tensor]) -> dict:
    """The case's terms, the gradients of their sum and of each ``loss*`` term w.r.t. every
    output tensor, the self-balance buffers and a checksum of the outputs."""
    loss_keys = sorted(k for k in losses if k.startswith('loss'))
    grads = {}
    targets = [('total', sum(losses[k] for k in loss_keys))] + [(k, losses[k]) for k in loss_keys]
    for name, value in targets:
        found = torch.autograd.grad(value, outputs, retain_graph=True, allow_unused=True)
        grads[name] = [
            torch.zeros_like(o) if g is None else g.detach() for o, g in zip(outputs, found)
        ]
    return dict(
        terms={k: v.detach().clone() for k, v in losses.items()},
        grads=grads,
        self_balance=self_balance_buffers(head),
        checksum=torch.stack([o.detach().double().sum() for o in outputs]),
    )


#: name -> (image size (None: RoI head), num_classes, seed, gt to ignore passed)
CASES = {
    'alrp_retina_max_iou': (96, 3, 1, True),
    'alrp_retina_atss': (96, 3, 2, False),
    'alrp_fovea': (128, 3, 3, False),
    'alrp_rpn': (64, 1, 4, False),
    'ap_loss_retina': (96, 3, 5, True),
    'ap_loss_fovea': (128, 3, 6, False),
    'alrp_bbox': (None, 3, 7, False),
    'alrp_bbox_class_agnostic': (None, 3, 8, False),
}


def run_case(name: str, head: nn.Module) -> dict:
    """Calls the loss of ``head`` (train mode) on the case's outputs and records it."""
    size, num_classes, seed, with_ignored = CASES[name]
    head.train()
    if size is None:
        outputs, args = roi_inputs(head, seed)
        losses = head.loss(*outputs, *args)
        return record(head, losses, outputs)
    cls_scores, bbox_preds = dense_outputs(head, size, seed)
    gts, ignored = ground_truth(size, num_classes)
    losses = head.loss_by_feat(
        cls_scores, bbox_preds, gts, img_metas(size), ignored if with_ignored else None
    )
    return record(head, losses, cls_scores + bbox_preds)


def recording_heads() -> Dict[str, Callable[[], nn.Module]]:
    """The heads of the recorded cases in the constructor form of the code the record was made
    from: tau and the self-balance as head arguments."""
    from mmdet_alrp.models.dense_heads import (
        APLossFoveaHead,
        APLossRetinaHead,
        aLRPFoveaHead,
        aLRPRetinaHead,
        aLRPRPNHead,
    )
    from mmdet_alrp.models.roi_heads import aLRPBBoxHead

    alrp = dict(type='aLRPLoss', delta=0.8, loss_weight=0.7)
    sb = dict(type='SelfBalance', init_weight=40.0)
    return {
        'alrp_retina_max_iou': lambda: aLRPRetinaHead(
            num_classes=3,
            train_cfg=MAX_IOU_CFG,
            loss_cls=alrp,
            self_balance=sb,
            tau=0.6,
            **RETINA_ARGS,
        ),
        'alrp_retina_atss': lambda: aLRPRetinaHead(
            num_classes=3,
            train_cfg=ATSS_CFG,
            loss_cls=dict(type='aLRPLoss'),
            tau=0.5,
            **dict(RETINA_ARGS, anchor_generator=ATSS_ANCHORS),
        ),
        'alrp_fovea': lambda: aLRPFoveaHead(
            num_classes=3, loss_cls=alrp, self_balance=sb, tau=0.4, **FOVEA_ARGS
        ),
        'alrp_rpn': lambda: aLRPRPNHead(
            loss_cls=dict(type='aLRPLoss', loss_weight=0.2), tau=0.7, **RPN_ARGS
        ),
        'ap_loss_retina': lambda: APLossRetinaHead(
            num_classes=3,
            train_cfg=MAX_IOU_CFG,
            loss_cls=dict(type='APLoss', delta=0.9),
            loss_bbox=SMOOTH_L1,
            **RETINA_ARGS,
        ),
        'ap_loss_fovea': lambda: APLossFoveaHead(
            num_classes=3, loss_cls=dict(type='APLoss'), loss_bbox=SMOOTH_L1, **FOVEA_ARGS
        ),
        'alrp_bbox': lambda: aLRPBBoxHead(loss_cls=alrp, self_balance=sb, tau=0.55, **BBOX_ARGS),
        'alrp_bbox_class_agnostic': lambda: aLRPBBoxHead(reg_class_agnostic=True, **BBOX_ARGS),
    }


def main(path: Optional[str] = None) -> None:
    import mmdet_alrp  # noqa: F401  (registers the modules)
    from mmdet.utils import register_all_modules

    register_all_modules()
    torch.manual_seed(0)
    recorded = {name: run_case(name, build()) for name, build in recording_heads().items()}
    torch.save(recorded, path or 'tests/test_models/head_losses_recorded.pt')


if __name__ == '__main__':
    main(*sys.argv[1:])

"""Generated inputs and independent checks shared by the dense head tests."""

import contextlib
import importlib
from typing import Dict, List, Sequence

import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmdet_alrp.models.dense_heads import aLRPATSSHead

IMG_SIZE = 128
#: What an aLRP head's loss_by_feat returns.
ALRP_KEYS = {'loss_cls', 'loss_bbox', 'alrp_cls', 'alrp_loc', 'sb_weight', 'num_pos'}
IN_CHANNELS = 8

MAX_IOU_TRAIN_CFG = dict(
    assigner=dict(
        type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0, ignore_iof_thr=-1
    ),
    sampler=dict(type='PseudoSampler'),
    allowed_border=-1,
    pos_weight=-1,
    debug=False,
)
ATSS_TRAIN_CFG = dict(
    assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1, pos_weight=-1, debug=False
)
SMOOTH_L1 = dict(type='SmoothL1Loss', beta=0.11, loss_weight=1.0)
#: RetinaHead's default anchors (9 a location), given to the ATSS heads
RETINA_ANCHORS = dict(
    type='AnchorGenerator',
    octave_base_scale=4,
    scales_per_octave=3,
    ratios=[0.5, 1.0, 2.0],
    strides=[8, 16, 32, 64, 128],
)
TEST_CFG = dict(
    nms_pre=1000,
    min_bbox_size=0,
    score_thr=0.05,
    nms=dict(type='nms', iou_threshold=0.5),
    max_per_img=100,
)
# FoveaBox on strides 8..128 with scale ranges that suit a 128 x 128 image.
FOVEA_ARGS = dict(
    strides=[8, 16, 32, 64, 128],
    base_edge_list=[16, 32, 64, 128, 256],
    scale_ranges=((1, 64), (32, 128), (64, 256), (128, 512), (256, 2048)),
    sigma=0.4,
    with_deform=False,
)


def make_retina_head(
    head_type: type, num_classes: int = 3, train_cfg: dict = MAX_IOU_TRAIN_CFG, **kwargs
) -> nn.Module:
    """A small RetinaNet-style head of ``head_type`` (one conv per branch, 8 channels),
    initialised from seed 0."""
    torch.manual_seed(0)
    return head_type(
        num_classes=num_classes,
        in_channels=IN_CHANNELS,
        feat_channels=8,
        stacked_convs=1,
        train_cfg=ConfigDict(train_cfg),
        test_cfg=ConfigDict(TEST_CFG),
        init_cfg=None,
        **kwargs,
    )


def make_atss_head(head_type: type, num_classes: int = 3, **kwargs) -> nn.Module:
    """The RetinaNet-ATSS head of ``head_type`` (an aLRPATSSHead): as :func:`make_retina_head`
    with RetinaHead's layers (no normalisation, no per-level scale) and anchors, on ATSS's
    targets."""
    args = dict(
        train_cfg=ATSS_TRAIN_CFG,
        norm_cfg=None,
        scale_per_level=False,
        anchor_generator=RETINA_ANCHORS,
    )
    return make_retina_head(head_type, num_classes, **dict(args, **kwargs))


def make_fovea_head(head_type: type, num_classes: int = 3, **kwargs) -> nn.Module:
    """A small FoveaBox head of ``head_type`` on :data:`FOVEA_ARGS`, initialised from seed 0."""
    torch.manual_seed(0)
    return head_type(
        num_classes=num_classes,
        in_channels=IN_CHANNELS,
        feat_channels=8,
        stacked_convs=1,
        test_cfg=ConfigDict(TEST_CFG),
        init_cfg=None,
        **FOVEA_ARGS,
        **kwargs,
    )


class APLossATSSHead(aLRPATSSHead):
    """AP Loss on ATSSHead's targets with RetinaHead's layers (no shipped head: the AP Loss
    RetinaNet-ATSS of the ranking heads' tests)."""

    loss_types = ('APLoss',)

    def __init__(self, *args, loss_cls: dict = dict(type='APLoss'), **kwargs) -> None:
        super().__init__(*args, loss_cls=loss_cls, **kwargs)


def img_metas(num_imgs: int = 1, size: int = IMG_SIZE) -> List[dict]:
    return [
        dict(
            img_shape=(size, size),
            pad_shape=(size, size),
            batch_input_shape=(size, size),
            scale_factor=(1.0, 1.0),
        )
        for _ in range(num_imgs)
    ]


def feats(
    strides: Sequence[int], num_imgs: int = 1, size: int = IMG_SIZE, seed: int = 0
) -> List[Tensor]:
    """Random feature maps of a ``size`` x ``size`` image, one per stride."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(num_imgs, IN_CHANNELS, size // s, size // s, generator=gen) for s in strides]


def instances(boxes: Sequence[Sequence[float]], labels: Sequence[int]) -> InstanceData:
    return InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(labels, dtype=torch.long),
    )


def empty_instances() -> InstanceData:
    return instances([], [])


# Two images: two boxes of classes 0 and 2, one large box of class 1.
GTS = [
    instances([[20.0, 30.0, 70.0, 90.0], [60.0, 8.0, 120.0, 50.0]], [0, 2]),
    instances([[10.0, 10.0, 100.0, 110.0]], [1]),
]


def strides_of(head: nn.Module) -> List[int]:
    return [s[0] for s in head.prior_generator.strides]


def losses_of(head: nn.Module, gts: List[InstanceData], seed: int = 0) -> Dict[str, Tensor]:
    cls_scores, bbox_preds = head(feats(strides_of(head), len(gts), seed=seed))
    return head.loss_by_feat(cls_scores, bbox_preds, gts, img_metas(len(gts)))


def total(losses: Dict[str, Tensor]) -> Tensor:
    return sum(v for k, v in losses.items() if 'loss' in k)


def assert_finite(losses: Dict[str, Tensor]) -> None:
    for key, value in losses.items():
        assert torch.isfinite(value).all(), f'{key} = {value}'


def assert_every_parameter_learns(head: nn.Module, loss: Tensor, nonzero: bool = True) -> None:
    """Backward reaches every trainable parameter (as DDP needs), with a non-zero gradient
    unless ``nonzero`` is False."""
    head.zero_grad(set_to_none=True)
    loss.backward()
    for name, param in head.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f'no gradient reaches {name}'
            assert not nonzero or param.grad.abs().sum() > 0, f'zero gradient on {name}'


def assert_detections(results: List[InstanceData], num_classes: int) -> None:
    """Each image's detections are ``n`` boxes (n, 4), scores (n, ) and labels (n, ) of the
    ``num_classes`` classes."""
    for r in results:
        n = r.bboxes.size(0)
        assert r.bboxes.shape == (n, 4) and r.scores.shape == (n,) and r.labels.shape == (n,)
        assert ((r.labels >= 0) & (r.labels < num_classes)).all()


@contextlib.contextmanager
def recording_alrp_loss():
    """Records the arguments ``(logits, targets, loc_errors)`` of every :func:`alrp_loss` call of
    the aLRP heads in the yielded list."""
    module = importlib.import_module('mmdet_alrp.models.losses.alrp_loss')
    original = module.alrp_loss
    calls = []

    def record(logits, targets, loc_errors, *args):
        calls.append([t.detach().clone() for t in (logits, targets, loc_errors)])
        return original(logits, targets, loc_errors, *args)

    module.alrp_loss = record
    try:
        yield calls
    finally:
        module.alrp_loss = original


def assert_alrp_num_classes(head: nn.Module, num_classes: int) -> Tensor:
    """The aLRP head ``head`` of ``num_classes`` classes has one logit per prior and class, and
    one box of the last class makes positives of that class only. Returns the recorded labels
    (A, C) of that box's image."""
    cls_scores, _ = head(feats(strides_of(head)))
    assert cls_scores[0].size(1) == head.num_base_priors * num_classes
    with recording_alrp_loss() as calls:
        losses_of(head, [instances([[20.0, 30.0, 70.0, 90.0]], [num_classes - 1])])
    logits, labels, _ = calls[0]
    assert logits.shape == labels.shape and labels.shape[1] == num_classes
    assert (labels[:, :-1] != 1).all() and (labels[:, -1] == 1).any()
    return labels


def giou(a: Sequence[float], b: Sequence[float]) -> float:
    """GIoU of two boxes (x1, y1, x2, y2), by the definition."""

    def area(x1, y1, x2, y2):
        return max(x2 - x1, 0.0) * max(y2 - y1, 0.0)

    inter = area(max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    union = area(*a) + area(*b) - inter
    hull = area(min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
    return inter / union - (hull - union) / hull


def learns(
    head: nn.Module, gts: List[InstanceData], steps: int = 30, lr: float = 0.01
) -> List[float]:
    """aLRP or AP classification loss before and after ``steps`` Adam steps on fixed inputs."""
    torch.manual_seed(0)
    x = feats(strides_of(head), len(gts))
    metas = img_metas(len(gts))
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    values = []
    for _ in range(steps + 1):
        losses = head.loss_by_feat(*head(x), gts, metas)
        values.append(losses['loss_cls'].item())
        optimizer.zero_grad()
        total(losses).backward()
        optimizer.step()
    return values

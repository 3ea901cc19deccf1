"""What the ranking adapters check where the head is built, and the units in which
PointRankingAdapter decodes FCOS's regression (against FCOSHead's own targets and a hand
decoding)."""

from collections import OrderedDict

import pytest
import torch
from torch import nn

from mmdet.models.dense_heads import FCOSHead
from mmdet.registry import MODELS
from mmdet_alrp.models.dense_heads import aLRPATSSHead, aLRPFCOSHead, aLRPFoveaHead, aLRPRetinaHead

from .head_utils import (
    ATSS_TRAIN_CFG,
    IMG_SIZE,
    MAX_IOU_TRAIN_CFG,
    giou,
    img_metas,
    instances,
    make_atss_head,
    make_fovea_head,
    make_retina_head,
    recording_alrp_loss,
)

FCOS_ARGS = dict(
    num_classes=3,
    in_channels=8,
    feat_channels=8,
    stacked_convs=1,
    norm_cfg=None,
    strides=[8, 16, 32, 64, 128],
    regress_ranges=((-1, 32), (32, 64), (64, 128), (128, 256), (256, 1e8)),
    init_cfg=None,
)


def test_assigner_must_fit_the_base_head():
    with pytest.raises(
        ValueError, match=r'ATSSAssigner.*use an ATSS head \(RankingATSSHead, aLRPATSSHead\)'
    ):
        make_retina_head(aLRPRetinaHead, train_cfg=ATSS_TRAIN_CFG)
    with pytest.raises(
        ValueError, match=r'aLRPATSSHead .*ATSSAssigner: use a RetinaNet head \(RankingRetinaHead'
    ):
        make_atss_head(aLRPATSSHead, train_cfg=MAX_IOU_TRAIN_CFG)


def test_an_explicit_softmax_classifier_reaches_the_loss_and_is_refused():
    with pytest.raises(ValueError, match='use_sigmoid must be True'):
        make_retina_head(aLRPRetinaHead, loss_cls=dict(type='aLRPLoss', use_sigmoid=False))
    head = make_retina_head(aLRPRetinaHead)
    assert head.use_sigmoid_cls and head.cls_out_channels == 3 and head.loss_bbox is None


def test_centerness_and_scales_are_not_kept():
    atss = make_atss_head(aLRPATSSHead)
    assert not hasattr(atss, 'atss_centerness') and atss.loss_centerness is None
    assert all(isinstance(scale, nn.Identity) for scale in atss.scales)
    with_scales = make_atss_head(aLRPATSSHead, scale_per_level=True)
    assert not any(isinstance(scale, nn.Identity) for scale in with_scales.scales)
    fcos = aLRPFCOSHead(**FCOS_ARGS)
    assert not hasattr(fcos, 'conv_centerness') and fcos.loss_centerness is None
    outputs = fcos([torch.rand(1, 8, IMG_SIZE // s, IMG_SIZE // s) for s in fcos.strides])
    assert len(outputs) == 2  # no centerness: predict ranks by the class score alone


@pytest.mark.parametrize('norm_on_bbox', [False, True])
def test_fcos_boxes_are_decoded_in_pixels(norm_on_bbox):
    head = aLRPFCOSHead(
        norm_on_bbox=norm_on_bbox,
        center_sampling=norm_on_bbox,
        loss_cls=dict(type='aLRPLoss', tau=0.5),
        **FCOS_ARGS,
    )
    ref = FCOSHead(norm_on_bbox=norm_on_bbox, center_sampling=norm_on_bbox, **FCOS_ARGS)
    sizes = [(IMG_SIZE // s, IMG_SIZE // s) for s in head.strides]
    gen = torch.Generator().manual_seed(0)
    cls_scores = [torch.randn(1, 3, h, w, generator=gen) for h, w in sizes]
    bbox_preds = [torch.rand(1, 4, h, w, generator=gen) * 4 for h, w in sizes]
    gt = [20.0, 30.0, 70.0, 90.0]
    with recording_alrp_loss() as calls:
        head.loss_by_feat(cls_scores, bbox_preds, [instances([gt], [1])], img_metas())
    _, labels, errors = calls[0]
    points = ref.prior_generator.grid_priors(sizes, device='cpu')
    ref_labels, _ = ref.get_targets(points, [instances([gt], [1])])
    pos = torch.cat(ref_labels) < 3
    assert pos.sum() > 0 and (labels[pos, 1] == 1).all() and (labels[~pos] == 0).all()
    units = torch.cat(
        [
            torch.full((len(p),), float(s) if norm_on_bbox else 1.0)
            for p, s in zip(points, head.strides)
        ]
    )
    distances = torch.cat([p.permute(0, 2, 3, 1).reshape(-1, 4) for p in bbox_preds])
    expected = []
    for (x, y), (left, top, right, bottom), unit in zip(
        torch.cat(points)[pos].tolist(), distances[pos].tolist(), units[pos]
    ):
        box = [x - left * unit, y - top * unit, x + right * unit, y + bottom * unit]
        expected.append((1 - giou(box, gt)) / (2 * 0.5))
    torch.testing.assert_close(errors, torch.tensor(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    'make_head',
    [lambda: aLRPFCOSHead(**FCOS_ARGS), lambda: make_fovea_head(aLRPFoveaHead)],
    ids=['fcos', 'fovea'],
)
def test_point_heads_load_their_self_balance_from_a_state_dict_without_version(make_head):
    """AnchorFreeHead renames every ``*cls`` key of an unversioned state dict to conv_cls: the
    loss's self-balance buffers (``loss_cls.self_balance.*``) must not be caught."""
    source, target = (
        nn.ModuleDict(dict(bbox_head=make_head())),
        nn.ModuleDict(dict(bbox_head=make_head())),
    )  # inside a detector, as mmdet's renaming expects
    source.bbox_head.loss_cls.self_balance.weight.fill_(7.0)
    unversioned = OrderedDict((key, value.clone()) for key, value in source.state_dict().items())
    assert 'bbox_head.loss_cls.self_balance.weight' in unversioned
    target.load_state_dict(unversioned, strict=True)
    assert target.bbox_head.loss_cls.self_balance.weight.item() == 7


def test_roi_activation_has_a_zero_background_column():
    loss = MODELS.build(dict(type='aLRPLoss'))
    logits = torch.randn(4, 3)
    scores = loss.get_activation(logits)
    assert scores.shape == (4, 4) and (scores[:, -1] == 0).all()
    torch.testing.assert_close(scores[:, :-1], logits.sigmoid())
    assert loss.get_cls_channels(3) == 3

"""aLRPRetinaHead: targets, aLRP Loss, gradients, prediction and learning."""
import math

import pytest
import torch
from mmengine.config import ConfigDict

from mmdet.models.dense_heads import ATSSHead
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_overlaps
from mmdet_alrp.models.dense_heads import aLRPRetinaHead

from .head_utils import (ATSS_TRAIN_CFG, IMG_SIZE, IN_CHANNELS, MAX_IOU_TRAIN_CFG, TEST_CFG,
                         assert_every_parameter_learns, assert_finite, empty_instances, feats,
                         giou, img_metas, instances, learns, losses_of, recording_alrp_loss,
                         strides_of, total)

KEYS = {'loss_cls', 'loss_bbox', 'alrp_cls', 'alrp_loc', 'sb_weight', 'num_pos'}
GTS = [instances([[20., 30., 70., 90.], [60., 8., 120., 50.]], [0, 2]),
       instances([[10., 10., 100., 110.]], [1])]
# One anchor per location, 32 x 32 at stride 8: neighbours one stride apart have IoU 0.6.
ONE_ANCHOR = dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1,
                  ratios=[1.0], strides=[8, 16])


def make_head(num_classes=3, train_cfg=MAX_IOU_TRAIN_CFG, **kwargs):
    torch.manual_seed(0)
    return aLRPRetinaHead(num_classes=num_classes, in_channels=IN_CHANNELS, feat_channels=8,
                          stacked_convs=1, train_cfg=ConfigDict(train_cfg),
                          test_cfg=ConfigDict(TEST_CFG), init_cfg=None, **kwargs)


@pytest.mark.parametrize('train_cfg', [MAX_IOU_TRAIN_CFG, ATSS_TRAIN_CFG], ids=['maxiou', 'atss'])
def test_losses_and_gradients(train_cfg):
    head = make_head(train_cfg=train_cfg)
    losses = losses_of(head, GTS)
    assert set(losses) == KEYS
    assert_finite(losses)
    assert losses['num_pos'] > 0
    assert 0 < losses['loss_cls'] <= 1
    assert losses['sb_weight'] == 50
    torch.testing.assert_close(losses['loss_bbox'], 50 * losses['alrp_loc'])
    assert_every_parameter_learns(head, total(losses))


@pytest.mark.parametrize('train_cfg', [MAX_IOU_TRAIN_CFG, ATSS_TRAIN_CFG], ids=['maxiou', 'atss'])
def test_image_without_ground_truth(train_cfg):
    head = make_head(train_cfg=train_cfg)
    losses = losses_of(head, [empty_instances()])
    assert_finite(losses)
    assert losses['num_pos'] == 0 and losses['loss_cls'] == 0 and losses['loss_bbox'] == 0
    assert_every_parameter_learns(head, total(losses), nonzero=False)
    # With a second image that has boxes, the empty one contributes negatives only.
    losses = losses_of(head, [empty_instances(), GTS[0]])
    assert_finite(losses)
    assert losses['num_pos'] > 0


@pytest.mark.parametrize('num_classes', [1, 3, 7])
def test_num_classes(num_classes):
    head = make_head(num_classes=num_classes)
    cls_scores, _ = head(feats(strides_of(head)))
    assert cls_scores[0].size(1) == head.num_base_priors * num_classes
    gts = [instances([[20., 30., 70., 90.]], [num_classes - 1])]
    with recording_alrp_loss() as calls:
        losses_of(head, gts)
    logits, labels, _ = calls[0]
    assert logits.shape == labels.shape
    assert labels.shape[1] == num_classes
    assert (labels[:, :-1] != 1).all() and (labels[:, -1] == 1).any()


def test_ignored_anchors_take_no_gradient():
    head = make_head()
    gt = [20., 30., 70., 90.]
    sizes = [(IMG_SIZE // s, IMG_SIZE // s) for s in strides_of(head)]
    gen = torch.Generator().manual_seed(1)
    cls_scores = [torch.randn(1, 27, h, w, generator=gen).requires_grad_() for h, w in sizes]
    bbox_preds = [torch.zeros(1, 36, h, w, requires_grad=True) for h, w in sizes]
    losses = head.loss_by_feat(cls_scores, bbox_preds, [instances([gt], [1])], img_metas())
    total(losses).backward()
    anchors = torch.cat(head.prior_generator.grid_priors(sizes, device='cpu'))
    grads = torch.cat([s.grad.permute(0, 2, 3, 1).reshape(-1, 3) for s in cls_scores])
    iou = bbox_overlaps(anchors, torch.tensor([gt]))[:, 0]
    assert iou.max() >= 0.5  # so the ignore band holds no best anchor of the box
    ignored, negative, positive = (iou >= 0.4) & (iou < 0.5), iou < 0.4, iou >= 0.5
    assert ignored.sum() >= 3 and positive.sum() >= 3
    assert (grads[ignored] == 0).all()
    assert (grads[negative] != 0).any() and (grads[positive, 1] < 0).all()


def hand_decode(anchor, delta):
    """DeltaXYWHBBoxCoder with means 0 and stds 1, written out."""
    ax, ay = (anchor[0] + anchor[2]) / 2, (anchor[1] + anchor[3]) / 2
    aw, ah = anchor[2] - anchor[0], anchor[3] - anchor[1]
    cx, cy = ax + delta[0] * aw, ay + delta[1] * ah
    w, h = aw * math.exp(delta[2]), ah * math.exp(delta[3])
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


@pytest.mark.parametrize('reg_decoded_bbox', [True, False])
def test_localisation_error_is_normalised_giou(reg_decoded_bbox):
    head = make_head(anchor_generator=ONE_ANCHOR, tau=0.5, reg_decoded_bbox=reg_decoded_bbox)
    gt = [56., 56., 88., 88.]
    sizes = [(IMG_SIZE // s, IMG_SIZE // s) for s in (8, 16)]
    cls_scores = [torch.zeros(1, 3, h, w) for h, w in sizes]
    zero = [torch.zeros(1, 4, h, w) for h, w in sizes]
    with recording_alrp_loss() as calls:
        head.loss_by_feat(cls_scores, zero, [instances([gt], [1])], img_metas())
    _, labels, errors = calls[0]
    anchors = torch.cat(head.prior_generator.grid_priors(sizes, device='cpu'))
    pos = torch.nonzero(labels[:, 1] == 1).squeeze(1)
    # Zero deltas: the boxes are the anchors. By hand: the anchor equal to the box has error 0,
    # one shifted by a stride has IoU = GIoU = 24 * 32 / (2 * 32 * 32 - 24 * 32) = 0.6, error
    # (1 - 0.6) / (2 * (1 - 0.5)) = 0.4.
    by_anchor = {tuple(anchors[i].tolist()): e.item() for i, e in zip(pos, errors)}
    assert by_anchor[tuple(gt)] == pytest.approx(0, abs=1e-6)
    assert by_anchor[(48., 56., 80., 88.)] == pytest.approx(0.4, abs=1e-6)
    assert by_anchor[(56., 64., 88., 96.)] == pytest.approx(0.4, abs=1e-6)

    # Random deltas, against boxes decoded by hand.
    gen = torch.Generator().manual_seed(2)
    deltas = [0.3 * torch.randn(1, 4, h, w, generator=gen) for h, w in sizes]
    flat = torch.cat([d.permute(0, 2, 3, 1).reshape(-1, 4) for d in deltas])
    with recording_alrp_loss() as calls:
        head.loss_by_feat(cls_scores, deltas, [instances([gt], [1])], img_metas())
    errors = calls[0][2]
    expected = [(1 - giou(hand_decode(anchors[i].tolist(), flat[i].tolist()), gt)) / (2 * 0.5)
                for i in pos]
    torch.testing.assert_close(errors, torch.tensor(expected), rtol=1e-5, atol=1e-5)


def test_tau_scales_the_error():
    head = make_head(anchor_generator=ONE_ANCHOR, tau=0.75)
    sizes = [(IMG_SIZE // s, IMG_SIZE // s) for s in (8, 16)]
    with recording_alrp_loss() as calls:
        head.loss_by_feat([torch.zeros(1, 3, h, w) for h, w in sizes],
                          [torch.zeros(1, 4, h, w) for h, w in sizes],
                          [instances([[56., 56., 88., 88.]], [0])], img_metas())
    assert calls[0][2].max().item() == pytest.approx((1 - 0.6) / (2 * 0.25), abs=1e-6)


def test_atss_targets_are_atss_heads():
    """With ATSSAssigner, the positives and classes are those of mmdet's ATSSHead, also with
    anchors outside the image (per-level counts of the anchors inside)."""
    train_cfg = dict(ATSS_TRAIN_CFG, allowed_border=0)
    head = make_head(train_cfg=train_cfg)
    atss = ATSSHead(num_classes=3, in_channels=IN_CHANNELS, feat_channels=8, stacked_convs=1,
                    norm_cfg=None,
                    anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                          scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
                                          strides=[8, 16, 32, 64, 128]),
                    train_cfg=ConfigDict(train_cfg), init_cfg=None)
    metas = img_metas(2)
    metas[1]['img_shape'] = (100, 90)
    x = feats(strides_of(head), 2)
    cls_scores, bbox_preds = head(x)
    with recording_alrp_loss() as calls:
        head.loss_by_feat(cls_scores, bbox_preds, GTS, metas)
    labels = calls[0][1]
    featmap_sizes = [s.shape[-2:] for s in cls_scores]
    anchor_list, valid_list = atss.get_anchors(featmap_sizes, metas, device='cpu')
    _, ref_labels, ref_weights, _, _, _ = atss.get_targets(anchor_list, valid_list, GTS, metas)
    ref_labels = torch.cat(ref_labels, 1).reshape(-1)
    ref_ignored = torch.cat(ref_weights, 1).reshape(-1) == 0
    assert ref_ignored.any()  # anchors across the border of the images
    pos = ref_labels < 3
    assert pos.sum() > 0
    torch.testing.assert_close(labels[pos].argmax(1), ref_labels[pos])
    assert (labels[pos].max(1).values == 1).all()
    assert (labels[ref_ignored] == -1).all()
    assert (labels[~pos & ~ref_ignored] == 0).all()


def test_predict_uses_sigmoid_scores():
    head = make_head(anchor_generator=ONE_ANCHOR)
    sizes = [(IMG_SIZE // s, IMG_SIZE // s) for s in (8, 16)]
    cls_scores = [torch.full((1, 3, h, w), -10.) for h, w in sizes]
    cls_scores[0][0, 2, 5, 6] = 3.  # anchor at (6 * 8, 5 * 8) of the stride 8 level, class 2
    bbox_preds = [torch.zeros(1, 4, h, w) for h, w in sizes]
    result = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=img_metas(),
                                  rescale=False)[0]
    assert result.bboxes.shape == (1, 4) and result.scores.shape == (1, )
    assert result.labels.tolist() == [2]
    assert result.scores.item() == pytest.approx(1 / (1 + math.exp(-3)), rel=1e-5)
    torch.testing.assert_close(result.bboxes, torch.tensor([[32., 24., 64., 56.]]))

    head = make_head()
    results = head.predict(feats(strides_of(head), 2),
                           [DetDataSample(metainfo=m) for m in img_metas(2)])
    for r in results:
        n = r.bboxes.size(0)
        assert r.bboxes.shape == (n, 4) and r.scores.shape == (n, ) and r.labels.shape == (n, )
        assert ((r.labels >= 0) & (r.labels < 3)).all()


def test_runs_under_autocast_in_float32():
    head = make_head()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        cls_scores, bbox_preds = head(feats(strides_of(head)))
        assert cls_scores[0].dtype == torch.bfloat16
        with recording_alrp_loss() as calls:
            losses = head.loss_by_feat(cls_scores, bbox_preds, GTS[:1], img_metas())
    assert_finite(losses)
    assert calls[0][2].dtype == torch.float32
    assert losses['loss_bbox'].dtype == torch.float32
    total(losses).backward()


def test_rejects_other_losses_and_bad_tau():
    with pytest.raises(ValueError, match='aLRPLoss'):
        make_head(loss_cls=dict(type='FocalLoss', use_sigmoid=True))
    with pytest.raises(ValueError, match='tau'):
        make_head(tau=1.0)


@pytest.mark.parametrize('train_cfg', [MAX_IOU_TRAIN_CFG, ATSS_TRAIN_CFG], ids=['maxiou', 'atss'])
def test_learns_on_one_image(train_cfg):
    head = make_head(num_classes=2, train_cfg=train_cfg)
    values = learns(head, [instances([[20., 30., 70., 90.], [60., 8., 120., 50.]], [0, 1])])
    assert values[-1] <= 0.5 * values[0], values


def test_built_from_config_ignores_loss_bbox():
    head = MODELS.build(dict(type='aLRPRetinaHead', num_classes=3, in_channels=IN_CHANNELS,
                             feat_channels=8, stacked_convs=1, init_cfg=None,
                             loss_bbox=dict(type='L1Loss', loss_weight=1.0)))
    assert head.loss_bbox is None and head.use_sigmoid_cls and head.reg_decoded_bbox
    assert head.self_balance.weight == 50

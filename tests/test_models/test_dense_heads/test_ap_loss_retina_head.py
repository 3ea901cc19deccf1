"""APLossRetinaHead: AP Loss over the batch and RetinaHead's Smooth L1 on the positives."""
import pytest
import torch
from mmengine.config import ConfigDict

from mmdet.models.dense_heads import RetinaHead
from mmdet_alrp.models.dense_heads import APLossRetinaHead
from mmdet_alrp.models.losses import ap_loss

from .head_utils import (ATSS_TRAIN_CFG, IMG_SIZE, IN_CHANNELS, MAX_IOU_TRAIN_CFG, TEST_CFG,
                         assert_every_parameter_learns, assert_finite, empty_instances, feats,
                         img_metas, instances, learns, losses_of, strides_of, total)

GTS = [instances([[20., 30., 70., 90.], [60., 8., 120., 50.]], [0, 2]),
       instances([[10., 10., 100., 110.]], [1])]
SMOOTH_L1 = dict(type='SmoothL1Loss', beta=0.11, loss_weight=1.0)


def make_head(num_classes=3, train_cfg=MAX_IOU_TRAIN_CFG, **kwargs):
    torch.manual_seed(0)
    return APLossRetinaHead(num_classes=num_classes, in_channels=IN_CHANNELS, feat_channels=8,
                            stacked_convs=1, train_cfg=ConfigDict(train_cfg),
                            test_cfg=ConfigDict(TEST_CFG), init_cfg=None, **kwargs)


@pytest.mark.parametrize('train_cfg', [MAX_IOU_TRAIN_CFG, ATSS_TRAIN_CFG], ids=['maxiou', 'atss'])
def test_losses_and_gradients(train_cfg):
    head = make_head(train_cfg=train_cfg)
    losses = losses_of(head, GTS)
    assert set(losses) == {'loss_cls', 'loss_bbox', 'num_pos'}
    assert_finite(losses)
    assert losses['num_pos'] > 0 and 0 < losses['loss_cls'] <= 1 and losses['loss_bbox'] > 0
    assert_every_parameter_learns(head, total(losses))


def test_matches_retina_head_targets_and_regression():
    """loss_bbox is RetinaHead's own Smooth L1; loss_cls is AP Loss on RetinaHead's labels with
    the zero-weight anchors ignored."""
    head = make_head()
    ref = RetinaHead(num_classes=3, in_channels=IN_CHANNELS, feat_channels=8, stacked_convs=1,
                     loss_cls=dict(type='FocalLoss', use_sigmoid=True), loss_bbox=SMOOTH_L1,
                     train_cfg=ConfigDict(MAX_IOU_TRAIN_CFG), init_cfg=None)
    cls_scores, bbox_preds = head(feats(strides_of(head), 2))
    metas = img_metas(2)
    losses = head.loss_by_feat(cls_scores, bbox_preds, GTS, metas)
    ref_losses = ref.loss_by_feat(cls_scores, bbox_preds, GTS, metas)
    torch.testing.assert_close(losses['loss_bbox'], sum(ref_losses['loss_bbox']))

    sizes = [s.shape[-2:] for s in cls_scores]
    anchor_list, valid_list = ref.get_anchors(sizes, metas, device='cpu')
    labels, weights = ref.get_targets(anchor_list, valid_list, GTS, metas)[:2]
    logits, targets = [], []
    for img in range(2):  # image by image, level by level
        for score, label, weight in zip(cls_scores, labels, weights):
            logits.append(score[img].permute(1, 2, 0).reshape(-1, 3))
            onehot = torch.zeros(label.size(1), 3, dtype=torch.long)
            pos = label[img] < 3
            onehot[pos, label[img][pos]] = 1
            onehot[weight[img] == 0] = -1
            targets.append(onehot)
    expected = ap_loss(torch.cat(logits), torch.cat(targets))
    assert int(losses['num_pos']) == int((torch.cat(targets) == 1).sum())
    torch.testing.assert_close(losses['loss_cls'], expected)


def test_image_without_ground_truth():
    head = make_head()
    losses = losses_of(head, [empty_instances()])
    assert_finite(losses)
    assert losses['num_pos'] == 0 and losses['loss_cls'] == 0 and losses['loss_bbox'] == 0
    assert_every_parameter_learns(head, total(losses), nonzero=False)


def test_ignored_anchors_take_no_gradient():
    head = make_head()
    sizes = [(IMG_SIZE // s, IMG_SIZE // s) for s in strides_of(head)]
    gen = torch.Generator().manual_seed(1)
    cls_scores = [torch.randn(1, 27, h, w, generator=gen).requires_grad_() for h, w in sizes]
    bbox_preds = [torch.zeros(1, 36, h, w) for h, w in sizes]
    gts = [instances([[20., 30., 70., 90.]], [1])]
    total(head.loss_by_feat(cls_scores, bbox_preds, gts, img_metas())).backward()
    anchor_list, valid_list = head.get_anchors(sizes, img_metas(), device='cpu')
    weights = torch.cat(head.get_targets(anchor_list, valid_list, gts, img_metas())[1], 1)[0]
    grads = torch.cat([s.grad.permute(0, 2, 3, 1).reshape(-1, 3) for s in cls_scores])
    assert (weights == 0).sum() >= 3
    assert (grads[weights == 0] == 0).all() and (grads[weights > 0] != 0).any()


def test_num_classes_and_predict():
    head = make_head(num_classes=5)
    x = feats(strides_of(head))
    assert head(x)[0][0].size(1) == head.num_base_priors * 5
    losses = losses_of(head, [instances([[20., 30., 70., 90.]], [4])])
    assert_finite(losses)
    result = head.predict_by_feat(*head(x), batch_img_metas=img_metas())[0]
    n = result.bboxes.size(0)
    assert result.scores.shape == (n, ) and result.labels.shape == (n, )
    assert ((result.labels >= 0) & (result.labels < 5)).all()


def test_rejects_other_losses():
    with pytest.raises(ValueError, match='APLoss'):
        make_head(loss_cls=dict(type='aLRPLoss'))


def test_learns_on_one_image():
    head = make_head(num_classes=2)
    values = learns(head, [instances([[20., 30., 70., 90.], [60., 8., 120., 50.]], [0, 1])])
    assert values[-1] <= 0.5 * values[0], values

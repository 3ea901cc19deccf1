"""APLossFoveaHead: AP Loss over the batch and FoveaHead's Smooth L1 on the positives."""
import pytest
import torch
from mmengine.config import ConfigDict

from mmdet.models.dense_heads import FoveaHead
from mmdet_alrp.models.dense_heads import APLossFoveaHead
from mmdet_alrp.models.losses import ap_loss

from .head_utils import (FOVEA_ARGS, IN_CHANNELS, TEST_CFG, assert_every_parameter_learns,
                         assert_finite, empty_instances, feats, img_metas, instances, learns,
                         losses_of, strides_of, total)

GTS = [instances([[20., 30., 70., 90.], [60., 8., 120., 50.]], [0, 2]),
       instances([[10., 10., 100., 110.]], [1])]
SMOOTH_L1 = dict(type='SmoothL1Loss', beta=0.11, loss_weight=1.0)


def make_head(num_classes=3, **kwargs):
    torch.manual_seed(0)
    return APLossFoveaHead(num_classes=num_classes, in_channels=IN_CHANNELS, feat_channels=8,
                           stacked_convs=1, test_cfg=ConfigDict(TEST_CFG), init_cfg=None,
                           **FOVEA_ARGS, **kwargs)


def test_losses_and_gradients():
    head = make_head()
    losses = losses_of(head, GTS)
    assert set(losses) == {'loss_cls', 'loss_bbox', 'num_pos'}
    assert_finite(losses)
    assert losses['num_pos'] > 0 and 0 < losses['loss_cls'] <= 1 and losses['loss_bbox'] > 0
    assert_every_parameter_learns(head, total(losses))


def test_matches_fovea_head_targets_and_regression():
    """loss_bbox is FoveaHead's own Smooth L1; loss_cls is AP Loss on FoveaHead's labels."""
    head = make_head()
    ref = FoveaHead(num_classes=3, in_channels=IN_CHANNELS, feat_channels=8, stacked_convs=1,
                    loss_cls=dict(type='FocalLoss', use_sigmoid=True), loss_bbox=SMOOTH_L1,
                    init_cfg=None, **FOVEA_ARGS)
    cls_scores, bbox_preds = head(feats(strides_of(head), 2))
    losses = head.loss_by_feat(cls_scores, bbox_preds, GTS, img_metas(2))
    ref_losses = ref.loss_by_feat(cls_scores, bbox_preds, GTS, img_metas(2))
    torch.testing.assert_close(losses['loss_bbox'], ref_losses['loss_bbox'])

    sizes = [s.shape[-2:] for s in cls_scores]
    priors = ref.prior_generator.grid_priors(sizes, device='cpu')
    labels, _ = ref.get_targets(GTS, sizes, priors)
    logits = torch.cat([s.permute(0, 2, 3, 1).reshape(-1, 3) for s in cls_scores])
    targets = torch.zeros_like(logits, dtype=torch.long)
    pos = labels < 3
    targets[pos, labels[pos]] = 1
    torch.testing.assert_close(losses['loss_cls'], ap_loss(logits, targets))
    assert int(losses['num_pos']) == int(pos.sum())


def test_image_without_ground_truth():
    head = make_head()
    losses = losses_of(head, [empty_instances()])
    assert_finite(losses)
    assert losses['num_pos'] == 0 and losses['loss_cls'] == 0 and losses['loss_bbox'] == 0
    assert_every_parameter_learns(head, total(losses), nonzero=False)


def test_num_classes_and_predict():
    head = make_head(num_classes=5)
    x = feats(strides_of(head))
    assert head(x)[0][0].size(1) == 5
    assert_finite(losses_of(head, [instances([[20., 30., 70., 90.]], [4])]))
    result = head.predict_by_feat(*head(x), batch_img_metas=img_metas())[0]
    n = result.bboxes.size(0)
    assert result.scores.shape == (n, ) and result.labels.shape == (n, )
    assert ((result.labels >= 0) & (result.labels < 5)).all()


def test_rejects_other_losses():
    with pytest.raises(ValueError, match='APLoss'):
        make_head(loss_cls=dict(type='FocalLoss', use_sigmoid=True))


def test_learns_on_one_image():
    head = make_head(num_classes=2)
    values = learns(head, [instances([[20., 30., 70., 90.], [60., 8., 120., 50.]], [0, 1])])
    assert values[-1] <= 0.5 * values[0], values

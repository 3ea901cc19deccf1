"""What the ranking heads share (aLRPRetinaHead, aLRPFoveaHead, APLossRetinaHead,
APLossFoveaHead; the RetinaNet ones with MaxIoUAssigner, and aLRPATSSHead and an AP Loss one with
ATSSAssigner): the loss terms and
their gradients, images without boxes, ignored anchors, autocast, the classes, the loss they
need, learning."""

from functools import partial

import pytest
import torch

from mmdet.structures.bbox import bbox_overlaps
from mmdet_alrp.models.dense_heads import (
    APLossFoveaHead,
    APLossRetinaHead,
    aLRPATSSHead,
    aLRPFoveaHead,
    aLRPRetinaHead,
)

from .head_utils import (
    ALRP_KEYS,
    GTS,
    IMG_SIZE,
    APLossATSSHead,
    assert_detections,
    assert_every_parameter_learns,
    assert_finite,
    empty_instances,
    feats,
    img_metas,
    instances,
    learns,
    losses_of,
    make_atss_head,
    make_fovea_head,
    make_retina_head,
    recording_alrp_loss,
    strides_of,
    total,
)

ALRP_HEADS = [
    pytest.param(partial(make_retina_head, aLRPRetinaHead), id='alrp-retina-maxiou'),
    pytest.param(partial(make_atss_head, aLRPATSSHead), id='alrp-retina-atss'),
    pytest.param(partial(make_fovea_head, aLRPFoveaHead), id='alrp-fovea'),
]
AP_HEADS = [
    pytest.param(partial(make_retina_head, APLossRetinaHead), id='ap-retina-maxiou'),
    pytest.param(partial(make_atss_head, APLossATSSHead), id='ap-retina-atss'),
    pytest.param(partial(make_fovea_head, APLossFoveaHead), id='ap-fovea'),
]
FOCAL_LOSS = dict(type='FocalLoss', use_sigmoid=True)


@pytest.mark.parametrize('make_head', ALRP_HEADS)
def test_alrp_losses_and_gradients(make_head):
    head = make_head()
    losses = losses_of(head, GTS)
    assert set(losses) == ALRP_KEYS
    assert_finite(losses)
    assert losses['num_pos'] > 0
    assert 0 < losses['loss_cls'] <= 1
    assert losses['sb_weight'] == 50
    torch.testing.assert_close(losses['loss_bbox'], 50 * losses['alrp_loc'])
    assert_every_parameter_learns(head, total(losses))


@pytest.mark.parametrize('make_head', AP_HEADS)
def test_ap_losses_and_gradients(make_head):
    head = make_head()
    losses = losses_of(head, GTS)
    assert set(losses) == {'loss_cls', 'loss_bbox', 'num_pos'}
    assert_finite(losses)
    assert losses['num_pos'] > 0 and 0 < losses['loss_cls'] <= 1 and losses['loss_bbox'] > 0
    assert_every_parameter_learns(head, total(losses))


@pytest.mark.parametrize('make_head', ALRP_HEADS + AP_HEADS)
def test_image_without_ground_truth(make_head):
    head = make_head()
    losses = losses_of(head, [empty_instances()])
    assert_finite(losses)
    assert losses['num_pos'] == 0 and losses['loss_cls'] == 0 and losses['loss_bbox'] == 0
    assert_every_parameter_learns(head, total(losses), nonzero=False)
    # With a second image that has boxes, the empty one contributes negatives only.
    losses = losses_of(head, [empty_instances(), GTS[0]])
    assert_finite(losses)
    assert losses['num_pos'] > 0


@pytest.mark.parametrize('make_head', [ALRP_HEADS[0], AP_HEADS[0]])
def test_retina_ignored_anchors_take_no_gradient(make_head):
    """With MaxIoUAssigner (0.5 / 0.4), the anchors of the ignore band, found from their IoU
    with the box, get no gradient; the negatives do, and the positives are pushed up."""
    head = make_head()
    gt = [20.0, 30.0, 70.0, 90.0]
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


@pytest.mark.parametrize('make_head', ALRP_HEADS)
def test_alrp_runs_under_autocast_in_float32(make_head):
    head = make_head()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        cls_scores, bbox_preds = head(feats(strides_of(head)))
        assert cls_scores[0].dtype == torch.bfloat16 and bbox_preds[0].dtype == torch.bfloat16
        with recording_alrp_loss() as calls:
            losses = head.loss_by_feat(cls_scores, bbox_preds, GTS[:1], img_metas())
    assert_finite(losses)
    assert calls[0][2].dtype == torch.float32
    assert losses['loss_bbox'].dtype == torch.float32
    total(losses).backward()


@pytest.mark.parametrize('make_head', AP_HEADS)
def test_ap_num_classes_and_predict(make_head):
    head = make_head(num_classes=5)
    x = feats(strides_of(head))
    assert head(x)[0][0].size(1) == head.num_base_priors * 5
    assert_finite(losses_of(head, [instances([[20.0, 30.0, 70.0, 90.0]], [4])]))
    assert_detections(head.predict_by_feat(*head(x), batch_img_metas=img_metas()), 5)


@pytest.mark.parametrize('loss_cls', [FOCAL_LOSS, dict(type='APLoss')], ids=['focal', 'ap'])
@pytest.mark.parametrize('make_head', ALRP_HEADS)
def test_alrp_heads_reject_other_losses(make_head, loss_cls):
    with pytest.raises(ValueError, match='aLRPLoss'):
        make_head(loss_cls=loss_cls)


@pytest.mark.parametrize('make_head', ALRP_HEADS)
def test_alrp_heads_reject_bad_tau(make_head):
    with pytest.raises(ValueError, match='tau'):
        make_head(loss_cls=dict(type='aLRPLoss', tau=1.0))


@pytest.mark.parametrize('loss_cls', [FOCAL_LOSS, dict(type='aLRPLoss')], ids=['focal', 'alrp'])
@pytest.mark.parametrize('make_head', AP_HEADS)
def test_ap_heads_reject_other_losses(make_head, loss_cls):
    with pytest.raises(ValueError, match='APLoss'):
        make_head(loss_cls=loss_cls)


@pytest.mark.parametrize('make_head', ALRP_HEADS + AP_HEADS)
def test_learns_on_one_image(make_head):
    head = make_head(num_classes=2)
    values = learns(head, [instances([[20.0, 30.0, 70.0, 90.0], [60.0, 8.0, 120.0, 50.0]], [0, 1])])
    assert values[-1] <= 0.5 * values[0], values

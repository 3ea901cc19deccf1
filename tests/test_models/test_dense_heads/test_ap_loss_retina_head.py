"""APLossRetinaHead: AP Loss over the batch and RetinaHead's Smooth L1 on the positives (what
it shares with the other ranking heads is in test_ranking_heads.py)."""

from functools import partial

import torch
from mmengine.config import ConfigDict

from alrp_core import ap_loss
from mmdet.models.dense_heads import RetinaHead
from mmdet_alrp.models.dense_heads import APLossRetinaHead

from .head_utils import (
    GTS,
    IN_CHANNELS,
    MAX_IOU_TRAIN_CFG,
    SMOOTH_L1,
    feats,
    img_metas,
    make_retina_head,
    strides_of,
)

make_head = partial(make_retina_head, APLossRetinaHead)


def test_matches_retina_head_targets_and_regression():
    """loss_bbox is RetinaHead's own Smooth L1 averaged over the 4P coordinates of the positives
    (RetinaHead divides its sum by P); loss_cls is AP Loss on RetinaHead's labels with the
    zero-weight anchors ignored."""
    head = make_head()
    ref = RetinaHead(
        num_classes=3,
        in_channels=IN_CHANNELS,
        feat_channels=8,
        stacked_convs=1,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True),
        loss_bbox=SMOOTH_L1,
        train_cfg=ConfigDict(MAX_IOU_TRAIN_CFG),
        init_cfg=None,
    )
    cls_scores, bbox_preds = head(feats(strides_of(head), 2))
    metas = img_metas(2)
    losses = head.loss_by_feat(cls_scores, bbox_preds, GTS, metas)
    ref_losses = ref.loss_by_feat(cls_scores, bbox_preds, GTS, metas)
    torch.testing.assert_close(losses['loss_bbox'], sum(ref_losses['loss_bbox']) / 4)

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

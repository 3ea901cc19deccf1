"""APLossFoveaHead: AP Loss over the batch and FoveaHead's Smooth L1 on the positives (what it
shares with the other ranking heads is in test_ranking_heads.py)."""

from functools import partial

import torch

from alrp_core import ap_loss
from mmdet.models.dense_heads import FoveaHead
from mmdet_alrp.models.dense_heads import APLossFoveaHead

from .head_utils import (
    FOVEA_ARGS,
    GTS,
    IN_CHANNELS,
    SMOOTH_L1,
    feats,
    img_metas,
    make_fovea_head,
    strides_of,
)

make_head = partial(make_fovea_head, APLossFoveaHead)


def test_matches_fovea_head_targets_and_regression():
    """loss_bbox is FoveaHead's own Smooth L1 averaged over the 4P coordinates of the positives
    (FoveaHead divides its sum by P); loss_cls is AP Loss on FoveaHead's labels."""
    head = make_head()
    ref = FoveaHead(
        num_classes=3,
        in_channels=IN_CHANNELS,
        feat_channels=8,
        stacked_convs=1,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True),
        loss_bbox=SMOOTH_L1,
        init_cfg=None,
        **FOVEA_ARGS,
    )
    cls_scores, bbox_preds = head(feats(strides_of(head), 2))
    losses = head.loss_by_feat(cls_scores, bbox_preds, GTS, img_metas(2))
    ref_losses = ref.loss_by_feat(cls_scores, bbox_preds, GTS, img_metas(2))
    torch.testing.assert_close(losses['loss_bbox'], ref_losses['loss_bbox'] / 4)

    sizes = [s.shape[-2:] for s in cls_scores]
    priors = ref.prior_generator.grid_priors(sizes, device='cpu')
    labels, _ = ref.get_targets(GTS, sizes, priors)
    logits = torch.cat([s.permute(0, 2, 3, 1).reshape(-1, 3) for s in cls_scores])
    targets = torch.zeros_like(logits, dtype=torch.long)
    pos = labels < 3
    targets[pos, labels[pos]] = 1
    torch.testing.assert_close(losses['loss_cls'], ap_loss(logits, targets))
    assert int(losses['num_pos']) == int(pos.sum())

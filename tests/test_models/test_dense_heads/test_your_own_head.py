"""docs/your_own_head.md: its example is alrp_nasfcos_head.py, word for word, and that head
(NAS-FCOS, which mmdet_alrp does not ship) builds from a config, initialises, trains and
predicts; the doc's one-line case (an adapter and an mmdet head, no body) trains too."""

import re
from pathlib import Path

import pytest
import torch
from mmengine.config import ConfigDict

from mmdet.models.dense_heads import NASFCOSHead, RetinaSepBNHead
from mmdet.registry import MODELS
from mmdet_alrp.models.dense_heads import AnchorRankingAdapter, aLRPFCOSHead
from mmdet_alrp.models.losses import aLRPLoss

from .alrp_nasfcos_head import aLRPNASFCOSHead
from .head_utils import (
    ALRP_KEYS,
    GTS,
    IN_CHANNELS,
    MAX_IOU_TRAIN_CFG,
    TEST_CFG,
    assert_detections,
    assert_every_parameter_learns,
    assert_finite,
    empty_instances,
    feats,
    img_metas,
    learns,
    losses_of,
    strides_of,
    total,
)

HERE = Path(__file__).resolve().parent
DOC = HERE.parents[2] / 'docs' / 'your_own_head.md'
# Three levels whose regress ranges each take positives of GTS on a 128 x 128 image.
STRIDES = [8, 16, 32]
REGRESS_RANGES = ((-1, 32), (32, 64), (64, 1e8))


def test_the_doc_quotes_the_example_word_for_word():
    blocks = re.findall(r'```python\n(.*?)```', DOC.read_text(), re.S)
    assert blocks[0] == (HERE / 'alrp_nasfcos_head.py').read_text()
    assert len(blocks[0].splitlines()) < 30


def nasfcos_head(num_classes=3, **kwargs):
    """The example head built through the registry, as a config builds it (no download)."""
    torch.manual_seed(0)
    return MODELS.build(
        dict(
            type='aLRPNASFCOSHead',
            num_classes=num_classes,
            in_channels=IN_CHANNELS,
            feat_channels=8,
            strides=STRIDES,
            regress_ranges=REGRESS_RANGES,
            norm_cfg=None,
            test_cfg=ConfigDict(TEST_CFG),
            init_cfg=None,
            **kwargs,
        )
    )


def test_it_is_nasfcos_with_alrp_loss():
    head = nasfcos_head()
    assert type(head) is aLRPNASFCOSHead
    assert isinstance(head, aLRPFCOSHead) and isinstance(head, NASFCOSHead)
    assert isinstance(head.loss_cls, aLRPLoss) and head.loss_bbox is None
    assert head.loss_centerness is None and not hasattr(head, 'conv_centerness')
    # NASFCOSHead's searched branches: DCNv2, conv 3x3, DCNv2, conv 1x1
    kinds = [type(m.conv).__name__ for m in head.cls_convs]
    assert kinds == ['ModulatedDeformConv2dPack', 'Conv2d', 'ModulatedDeformConv2dPack', 'Conv2d']
    head.init_weights()  # NASFCOSHead's own default init would ask for conv_centerness
    prior_bias = -torch.log(torch.tensor((1 - 0.01) / 0.01))
    torch.testing.assert_close(head.conv_cls.bias.data, prior_bias.expand(3))
    with pytest.raises(ValueError, match='aLRP Loss ranks one sigmoid logit per class'):
        nasfcos_head(loss_cls=dict(type='aLRPLoss', use_sigmoid=False))


def test_it_trains():
    head = nasfcos_head()
    head.init_weights()
    losses = losses_of(head, GTS)
    assert set(losses) == ALRP_KEYS
    assert_finite(losses)
    assert losses['num_pos'] > 0 and 0 < losses['alrp_cls'] < 1
    assert_every_parameter_learns(head, total(losses))
    values = learns(head, GTS[1:], steps=8)
    assert all(torch.isfinite(torch.tensor(values))) and values[-1] < 0.98 * values[0]


def test_empty_ground_truth_and_predict():
    head = nasfcos_head(num_classes=5)
    losses = losses_of(head, [empty_instances()])
    assert losses['num_pos'] == 0 and losses['loss_cls'] == 0
    assert_every_parameter_learns(head, total(losses), nonzero=False)
    head.eval()
    with torch.no_grad():
        outputs = head(feats(strides_of(head), 2))
        assert len(outputs) == 2 and outputs[0][0].shape[1] == 5  # no centerness output
        results = head.predict_by_feat(*outputs, batch_img_metas=img_metas(2), rescale=False)
    assert len(results) == 2
    assert_detections(results, 5)


@pytest.mark.parametrize('loss', ['aLRPLoss', 'RankSortLoss'])
def test_an_adapter_and_an_mmdet_head_need_no_body(loss):
    """The doc's first case: NAS-FPN's RetinaSepBNHead with the anchor adapter, with aLRP Loss
    (the adapter's default) and with Rank & Sort Loss."""
    head_type = type('RankingRetinaSepBNHead', (AnchorRankingAdapter, RetinaSepBNHead), {})
    torch.manual_seed(0)
    head = head_type(
        num_classes=3,
        num_ins=5,
        in_channels=IN_CHANNELS,
        feat_channels=8,
        stacked_convs=1,
        train_cfg=ConfigDict(MAX_IOU_TRAIN_CFG),
        test_cfg=ConfigDict(TEST_CFG),
        **({} if loss == 'aLRPLoss' else dict(loss_cls=dict(type=loss))),
    )
    assert type(head.loss_cls).__name__ == loss and head.loss_bbox is None
    losses = losses_of(head, GTS)
    keys = ALRP_KEYS if loss == 'aLRPLoss' else {'loss_rank', 'loss_sort', 'loss_bbox'}
    assert keys <= set(losses) and losses['num_pos'] > 0
    assert_finite(losses)
    assert_every_parameter_learns(head, total(losses))

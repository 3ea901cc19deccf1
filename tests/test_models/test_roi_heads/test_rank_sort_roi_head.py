"""RankSortRoIHead with RankingBBoxHead (RankSortLoss), KeepAllSampler and RankingFCNMaskHead on
generated RoIs, features and masks."""

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks, mask_target
from mmdet_alrp.models.roi_heads import RankSortRoIHead

CHANNELS = 8
IMG = 64
STDS = [0.1, 0.1, 0.2, 0.2]
MASK_KEYS = {'loss_mask', 'dice_error', 'mask_sb_weight'}


def roi_head_cfg(num_classes: int = 3, shared_extractor: bool = False, **kwargs) -> dict:
    extractor = dict(
        type='SingleRoIExtractor',
        roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
        out_channels=CHANNELS,
        featmap_strides=[4, 8],
    )
    cfg = dict(
        type='RankSortRoIHead',
        bbox_roi_extractor=extractor,
        bbox_head=dict(
            type='RankingBBoxHead',
            in_channels=CHANNELS,
            fc_out_channels=32,
            roi_feat_size=7,
            num_classes=num_classes,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=STDS),
            loss_cls=dict(type='RankSortLoss'),
            loss_bbox=None,
            reg_decoded_bbox=True,
        ),
        mask_roi_extractor=None
        if shared_extractor
        else dict(extractor, roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0)),
        mask_head=dict(
            type='RankingFCNMaskHead',
            num_convs=1,
            in_channels=CHANNELS,
            conv_out_channels=CHANNELS,
            num_classes=num_classes,
        ),
        train_cfg=ConfigDict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=True,
                ignore_iof_thr=-1,
            ),
            sampler=dict(type='KeepAllSampler', add_gt_as_proposals=True),
            mask_size=14 if shared_extractor else 28,
            pos_weight=-1,
            debug=False,
        ),
        test_cfg=ConfigDict(
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=20,
            mask_thr_binary=0.5,
        ),
    )
    cfg.update(kwargs)
    return cfg


def make_roi_head(**kwargs) -> RankSortRoIHead:
    torch.manual_seed(0)
    return MODELS.build(roi_head_cfg(**kwargs))


def gt_instances(boxes, labels) -> InstanceData:
    """Boxes (n, 4) and labels with masks: each box's middle, a distinct pattern per box."""
    masks = np.zeros((len(boxes), IMG, IMG), np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        w, h = x2 - x1, y2 - y1
        masks[k, int(y1 + h / 4) : int(y2 - h / (4 + k)), int(x1 + w / (5 + k)) : int(x2)] = 1
    return InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).view(-1, 4),
        labels=torch.tensor(labels, dtype=torch.long),
        masks=BitmapMasks(masks, IMG, IMG),
    )


def samples(gts) -> list:
    result = []
    for gt in gts:
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(IMG, IMG),
                ori_shape=(IMG, IMG),
                pad_shape=(IMG, IMG),
                scale_factor=(1.0, 1.0),
            )
        )
        sample.gt_instances = gt
        result.append(sample)
    return result


def features(num_imgs: int, seed: int = 0, requires_grad: bool = False):
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(num_imgs, CHANNELS, IMG // s, IMG // s, generator=gen).requires_grad_(
            requires_grad
        )
        for s in (4, 8)
    )


def proposals(gt: InstanceData, num_jitter: int = 6, num_random: int = 6, seed: int = 0):
    """Jittered copies of the gt boxes (mostly positives) and random boxes (mostly negatives),
    all distinct."""
    gen = torch.Generator().manual_seed(seed)
    boxes = [gt.bboxes.repeat_interleave(num_jitter, 0)]
    boxes[0] = boxes[0] + torch.randn(boxes[0].shape, generator=gen) * 2.0
    corners = torch.rand(num_random, 2, generator=gen) * (IMG - 16)
    sizes = 6 + torch.rand(num_random, 2, generator=gen) * 14
    boxes.append(torch.cat([corners, corners + sizes], 1))
    boxes = torch.cat(boxes).clamp(0, IMG)
    return InstanceData(bboxes=boxes, scores=torch.ones(len(boxes)))


GTS = [
    gt_instances([[8.0, 8.0, 40.0, 40.0], [28.0, 20.0, 60.0, 52.0]], [0, 2]),
    gt_instances([[4.0, 30.0, 30.0, 60.0]], [1]),
    gt_instances(
        [[20.0, 4.0, 50.0, 28.0], [2.0, 2.0, 18.0, 18.0], [36.0, 36.0, 62.0, 62.0]], [2, 0, 1]
    ),
]


def loss_of(head, gts, seed: int = 0, requires_grad: bool = False):
    x = features(len(gts), seed, requires_grad)
    props = [proposals(gt, seed=seed + i) for i, gt in enumerate(gts)]
    return head.loss(x, props, samples(gts)), x


def total(losses) -> torch.Tensor:
    return sum(v for k, v in losses.items() if 'loss' in k)


def test_losses_finite_balanced_and_every_parameter_learns():
    head = make_roi_head()
    losses, x = loss_of(head, GTS[:2], requires_grad=True)
    assert {'loss_rank', 'loss_sort', 'loss_bbox'} | MASK_KEYS <= set(losses)
    assert all(torch.isfinite(v).all() for v in losses.values())
    target = (losses['loss_rank'] + losses['loss_sort']).item()
    assert target > 0
    assert losses['loss_mask'].item() == pytest.approx(target, rel=1e-6)
    assert losses['loss_mask'].item() == pytest.approx(
        losses['mask_sb_weight'].item() * losses['dice_error'].item(), rel=1e-6
    )
    assert 0 < losses['dice_error'].item() < 1
    total(losses).backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert x[0].grad.abs().sum() > 0  # (RoIs under 112 px map to the first level)


def test_mask_loss_alone_reaches_the_mask_branch_only():
    head = make_roi_head()
    losses, _ = loss_of(head, GTS[:2])
    losses['loss_mask'].backward()
    for name, param in head.named_parameters():
        reached = param.grad is not None and param.grad.abs().sum() > 0
        assert reached == name.startswith('mask_head.'), name


def sampled(head, gts, x):
    """What RankSortRoIHead.loss samples: each image's SamplingResult."""
    results = []
    for i, gt in enumerate(gts):
        props = proposals(gt, seed=i)
        props.priors = props.pop('bboxes')
        assign = head.bbox_assigner.assign(props, gt, None)
        results.append(head.bbox_sampler.sample(assign, props, gt))
    return results


@pytest.mark.parametrize('seed', range(6))
def test_capped_masks_keep_their_own_weights_across_images(seed, monkeypatch):
    head = make_roi_head(max_train_masks=7)
    x = features(3)
    results = sampled(head, GTS, x)
    num_pos = [r.pos_priors.size(0) for r in results]
    num_rois = [r.pos_priors.size(0) + r.neg_priors.size(0) for r in results]
    assert all(n >= 4 for n in num_pos) and sum(num_pos) > 7
    starts = np.cumsum([0, *num_rois[:-1]])
    # distinct logits: RoI r's highest logit is 0.01 r - 2, so its weight names it
    gen = torch.Generator().manual_seed(seed)
    rows = sum(num_rois)
    cls_score = torch.rand(rows, 3, generator=gen) - 3.0
    cls_score[torch.arange(rows), torch.randint(3, (rows,), generator=gen)] = (
        0.01 * torch.arange(rows) - 2.0
    )
    calls = []
    original = head.mask_head.loss_and_target

    def record(**kwargs):
        out = original(**kwargs)
        calls.append(dict(kwargs, mask_targets=out['mask_targets']))
        return out

    monkeypatch.setattr(head.mask_head, 'loss_and_target', record)
    torch.manual_seed(seed)
    out = head.mask_loss(
        x,
        results,
        None,
        GTS,
        cls_score=cls_score,
        balance_target=torch.tensor(0.7),
    )
    (call,) = calls
    kept = out['sampling_results']
    assert call['sampling_results'] is kept and torch.equal(call['pos_weights'], out['pos_weights'])
    assert sum(k.pos_priors.size(0) for k in kept) == 7
    assert sum(k.pos_priors.size(0) > 0 for k in kept) >= 2  # drawn from several images

    expected_weights, expected_targets = [], []
    for i, (full, part) in enumerate(zip(results, kept)):
        for k, pos_ind in enumerate(part.pos_inds.tolist()):
            j = full.pos_inds.tolist().index(pos_ind)  # its place among the image's positives
            assert torch.equal(part.pos_priors[k], full.pos_priors[j])
            assert part.pos_gt_labels[k] == full.pos_gt_labels[j]
            assert part.pos_assigned_gt_inds[k] == full.pos_assigned_gt_inds[j]
            expected_weights.append(torch.tensor(0.01 * float(starts[i] + j) - 2.0).sigmoid())
            gt_index = full.pos_assigned_gt_inds[j : j + 1]
            expected_targets.append(
                mask_target(
                    [full.pos_priors[j : j + 1]],
                    [gt_index],
                    [GTS[i].masks],
                    ConfigDict(mask_size=28),
                )
            )
    weights = torch.stack(expected_weights)
    torch.testing.assert_close(out['pos_weights'].double(), weights.double(), rtol=1e-6, atol=0)
    targets = torch.cat(expected_targets)
    assert torch.equal(call['mask_targets'], targets)

    # the logged L_mask against a float64 reference on these masks, weights and targets
    labels = torch.cat([k.pos_gt_labels for k in kept])
    probs = call['mask_preds'].detach().double()[torch.arange(7), labels].sigmoid()
    t = targets.double()
    dice = 2 * (probs * t).sum((1, 2)) / ((probs**2).sum((1, 2)) + (t**2).sum((1, 2)) + 1e-5)
    w = weights.double()
    reference = ((w * (1 - dice)).sum() / w.sum()).item()
    assert out['loss_mask']['dice_error'].item() == pytest.approx(reference, rel=1e-5)
    assert out['loss_mask']['loss_mask'].item() == pytest.approx(0.7, rel=1e-6)


def test_select_masks_draws_uniformly_over_the_batch():
    head = make_roi_head(max_train_masks=4)
    assert [k.tolist() for k in head.select_masks([1, 0, 3])] == [[0], [], [0, 1, 2]]
    assert [k.tolist() for k in head.select_masks([2, 2])] == [[0, 1], [0, 1]]
    torch.manual_seed(0)
    counts = torch.zeros(10)
    draws = 2000
    for _ in range(draws):
        keep = head.select_masks([3, 5, 2])
        assert sum(k.numel() for k in keep) == 4
        for k, n in zip(keep, [3, 5, 2]):
            assert (k.diff() > 0).all() and (k >= 0).all() and (k < n).all()
        counts += torch.cat([torch.zeros(n).index_fill_(0, k, 1) for k, n in zip(keep, [3, 5, 2])])
    freq = counts / draws
    assert ((freq - 0.4).abs() < 0.05).all(), freq


def test_mask_features_from_the_box_extractor():
    head = make_roi_head(shared_extractor=True, max_train_masks=5)
    assert head.share_roi_extractor
    losses, _ = loss_of(head, GTS)
    assert all(torch.isfinite(v).all() for v in losses.values())
    total(losses).backward()
    assert all(p.grad is not None for p in head.mask_head.parameters())


def empty_gt() -> InstanceData:
    return InstanceData(
        bboxes=torch.zeros(0, 4),
        labels=torch.zeros(0, dtype=torch.long),
        masks=BitmapMasks(np.zeros((0, IMG, IMG), np.uint8), IMG, IMG),
    )


def test_empty_ground_truth():
    head = make_roi_head()
    x = features(2)
    props = [
        InstanceData(
            bboxes=torch.tensor([[4.0, 4.0, 30.0, 30.0], [10.0, 20.0, 50.0, 60.0]]),
            scores=torch.ones(2),
        )
        for _ in range(2)
    ]
    losses = head.loss(x, props, samples([empty_gt(), empty_gt()]))
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert losses['loss_mask'].item() == 0 and losses['dice_error'].item() == 0
    total(losses).backward()
    # one image without ground truth beside one with
    head.zero_grad()
    losses, _ = loss_of(make_roi_head(), [empty_gt(), GTS[1]])
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert losses['dice_error'].item() > 0


@pytest.mark.parametrize('num_classes', [1, 7, 1203])
def test_any_number_of_classes_trains(num_classes):
    head = make_roi_head(num_classes=num_classes, max_train_masks=20)
    assert head.bbox_head.fc_cls.out_features == num_classes
    assert head.mask_head.conv_logits.out_channels == num_classes
    last = num_classes - 1
    gts = [
        gt_instances([[8.0, 8.0, 40.0, 40.0], [28.0, 20.0, 60.0, 52.0]], [last, 0]),
        gt_instances([[4.0, 30.0, 30.0, 60.0]], [last]),
    ]
    optimizer = torch.optim.SGD(head.parameters(), lr=0.01)
    losses, _ = loss_of(head, gts)
    assert all(torch.isfinite(v).all() for v in losses.values())
    optimizer.zero_grad()
    total(losses).backward()
    weight = head.mask_head.conv_logits.weight.grad
    assert weight[last].abs().sum() > 0 and weight[0].abs().sum() > 0
    if num_classes > 2:
        assert weight[1:last].abs().sum() == 0  # no positive of those classes
    optimizer.step()
    assert all(torch.isfinite(p).all() for p in head.parameters())


def test_predict_shapes():
    head = make_roi_head()
    head.eval()
    x = features(2)
    props = [proposals(gt, seed=i) for i, gt in enumerate(GTS[:2])]
    with torch.no_grad():
        results = head.predict(x, props, samples(GTS[:2]), rescale=False)
    assert len(results) == 2
    for result in results:
        n = len(result)
        assert n > 0
        assert result.bboxes.shape == (n, 4) and result.scores.shape == (n,)
        assert ((result.labels >= 0) & (result.labels < 3)).all()
        assert result.masks.shape == (n, IMG, IMG) and result.masks.dtype == torch.bool


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match='RankSortLoss'):
        MODELS.build(
            roi_head_cfg(
                bbox_head=dict(
                    roi_head_cfg()['bbox_head'], type='aLRPBBoxHead', loss_cls=dict(type='aLRPLoss')
                )
            )
        )
    with pytest.raises(ValueError, match='RankingFCNMaskHead'):
        MODELS.build(roi_head_cfg(mask_head=dict(roi_head_cfg()['mask_head'], type='FCNMaskHead')))
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match='max_train_masks'):
            make_roi_head(max_train_masks=bad)


def test_under_autocast_the_losses_are_float32():
    reference, _ = loss_of(make_roi_head(), GTS[:2])
    head = make_roi_head()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses, _ = loss_of(head, GTS[:2])
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in losses.values())
    assert losses['loss_mask'].item() == pytest.approx(
        (losses['loss_rank'] + losses['loss_sort']).item(), rel=1e-6
    )
    assert losses['dice_error'].item() == pytest.approx(reference['dice_error'].item(), rel=0.05)
    total(losses).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in head.parameters())

"""CocoLRPMetric on the two cases where LRP-Error's conventions decide: ties across images and a
class with only false positives; boxes and masks, by object size, both tie rules.

Classes a, b, c; two 100 x 100 images; boxes xyxy. Masks are the boxes' pixels except where
said.
Image 1: a's ground truth g1 = [0, 0, 10, 10] (small) with a detection 0.8 = [0, 0, 10, 8]
(box IoU 0.8; its mask is rows 0-4 only, mask IoU 0.5); b's detection 0.6 = [70, 0, 80, 10]
(small, FP); c's ground truth [60, 60, 80, 80] (small) with detections 0.95 = [0, 50, 10, 60] and
0.3 = [85, 85, 95, 95], both FP.
Image 2: a's detection 0.8 = [50, 50, 60, 60] (FP); b's ground truth [20, 20, 60, 60] (medium)
detected exactly at 0.6.

LRP-Error's order breaks the equal scores by image: a = [TP (img 1), FP (img 2)], b = [FP (img 1),
TP (img 2)]. Every LRP below is (sum (1 - IoU) / 0.5 + FP + FN) / (TP + FP + FN).

Boxes, every position (LRP-Error):
  a: after TP (0.4 + 0 + 0) / 1 = 0.4; after FP (0.4 + 1) / 2 = 0.7 -> 0.4, loc 0.2, FP 0, FN 0.
  b: after FP (1 + 1) / 2 = 1; after TP (0 + 1 + 0) / 2 = 0.5 -> 0.5, loc 0, FP 0.5, FN 0.
  c: no true positive -> oLRP 1, FN 1, loc, FP and threshold undefined, out of those means.
  moLRP = 1.9 / 3 = 0.633, loc = 0.2 / 2 = 0.1, FP = 0.5 / 2 = 0.25, FN = 1 / 3 = 0.333.
Boxes, threshold rule: a cannot cut between its two 0.8s: 0.7, FP 0.5; b as before.
  moLRP = 2.2 / 3 = 0.733, loc 0.1, FP = 1 / 2 = 0.5, FN 0.333.
Masks, every position: a after TP (1 + 0 + 0) / 1 = 1, after FP (1 + 1) / 2 = 1: the first, loc
  0.5, FP 0; b and c as for boxes. moLRP = 2.5 / 3 = 0.833, loc = 0.25, FP 0.25, FN 0.333.
By size (COCO's ranges; ground truth outside a range ignored, and the detections matched to it or
unmatched outside it): small = a and c (b's ground truth is medium): boxes (0.4 + 1) / 2 = 0.7
(threshold rule (0.7 + 1) / 2 = 0.85), loc 0.2, FP 0, FN 0.5. Medium = b alone, whose small FP of
image 1 is ignored: after it LRP 1, after the TP 0 -> 0, loc 0, FP 0, FN 0. Large: no class, -1.
"""

import json

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from mmdet_alrp.evaluation import CocoLRPMetric

CLASSES = ('a', 'b', 'c')
SIZE = 100
GTS = {  # image id -> [(xyxy, label)]
    1: [([0, 0, 10, 10], 0), ([60, 60, 80, 80], 2)],
    2: [([20, 20, 60, 60], 1)],
}
DETS = {  # image id -> [(xyxy, label, score, mask rows (None: the box's))]
    1: [
        ([0, 0, 10, 8], 0, 0.8, (0, 5)),
        ([70, 0, 80, 10], 1, 0.6, None),
        ([0, 50, 10, 60], 2, 0.95, None),
        ([85, 85, 95, 95], 2, 0.3, None),
    ],
    2: [([50, 50, 60, 60], 0, 0.8, None), ([20, 20, 60, 60], 1, 0.6, None)],
}


def pixels(box, rows=None):
    """Boolean (SIZE, SIZE) mask of an integer xyxy box, optionally only rows [r0, r1)."""
    x1, y1, x2, y2 = box
    r0, r1 = rows if rows is not None else (y1, y2)
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[r0:r1, x1:x2] = True
    return mask


def write_ann_file(path):
    annotations = []
    for img_id, gts in GTS.items():
        for box, label in gts:
            rle = mask_utils.encode(np.asfortranarray(pixels(box).astype(np.uint8)))
            x1, y1, x2, y2 = box
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=img_id,
                    category_id=label + 1,
                    bbox=[x1, y1, x2 - x1, y2 - y1],
                    area=(x2 - x1) * (y2 - y1),
                    segmentation=dict(size=rle['size'], counts=rle['counts'].decode()),
                    iscrowd=0,
                )
            )
    path.write_text(
        json.dumps(
            dict(
                images=[dict(id=i, width=SIZE, height=SIZE, file_name=f'{i}.jpg') for i in (1, 2)],
                categories=[dict(id=k + 1, name=name) for k, name in enumerate(CLASSES)],
                annotations=annotations,
            )
        )
    )
    return str(path)


def evaluate(tmp_path, **kwargs):
    """Results of CocoLRPMetric on the scene and the thresholds json it writes."""
    metric = CocoLRPMetric(
        ann_file=write_ann_file(tmp_path / 'gt.json'),
        thresholds_file=str(tmp_path / 'thr.json'),
        **kwargs,
    )
    metric.dataset_meta = dict(classes=CLASSES)
    samples = []
    for img_id, dets in DETS.items():
        samples.append(
            dict(
                img_id=img_id,
                ori_shape=(SIZE, SIZE),
                pred_instances=dict(
                    bboxes=torch.tensor([d[0] for d in dets], dtype=torch.float32),
                    labels=torch.tensor([d[1] for d in dets]),
                    scores=torch.tensor([d[2] for d in dets], dtype=torch.float32),
                    masks=torch.from_numpy(np.stack([pixels(d[0], d[3]) for d in dets])),
                ),
            )
        )
    metric.process({}, samples)
    results = metric.evaluate(size=len(samples))
    return results, json.loads((tmp_path / 'thr.json').read_text())


def means(results, iou_type, suffix=''):
    return [
        results[f'coco/{iou_type}_{name}{suffix}']
        for name in ('moLRP', 'moLRP_loc', 'moLRP_FP', 'moLRP_FN')
    ]


def test_ties_across_images_and_a_class_with_only_false_positives(tmp_path):
    results, saved = evaluate(tmp_path, metric=['bbox', 'segm'], classwise=True)
    assert means(results, 'bbox') == [0.633, 0.1, 0.25, 0.333]
    assert means(results, 'segm') == [0.833, 0.25, 0.25, 0.333]
    assert [results[f'coco/{c}_oLRP'] for c in CLASSES] == [0.4, 0.5, 1.0]
    assert [results[f'coco/{c}_segm_oLRP'] for c in CLASSES] == [1.0, 0.5, 1.0]

    assert saved['ties'] == 'position'
    a, b, c = saved['classes']
    assert a['oLRP'] == pytest.approx(0.4) and a['oLRP_loc'] == pytest.approx(0.2)
    assert (a['oLRP_FP'], a['oLRP_FN']) == (0.0, 0.0)
    assert a['threshold'] == pytest.approx(0.8)  # the score at the position cut
    assert (b['oLRP'], b['oLRP_loc'], b['oLRP_FP'], b['oLRP_FN']) == (0.5, 0.0, 0.5, 0.0)
    assert b['threshold'] == pytest.approx(0.6)
    assert c == dict(
        label=2,
        name='c',
        category_id=3,
        threshold=None,
        oLRP=1.0,
        oLRP_loc=None,
        oLRP_FP=None,
        oLRP_FN=1.0,
        num_gts=1,
    )
    mask_a = saved['segm_classes'][0]
    assert (mask_a['oLRP'], mask_a['oLRP_loc'], mask_a['oLRP_FP']) == (1.0, 0.5, 0.0)
    assert mask_a['threshold'] == pytest.approx(0.8)


def test_the_threshold_rule_does_not_cut_between_equal_scores(tmp_path):
    results, saved = evaluate(tmp_path, lrp_ties='threshold')
    assert means(results, 'bbox') == [0.733, 0.1, 0.5, 0.333]
    assert results['coco/bbox_moLRP_s'] == 0.85
    assert saved['ties'] == 'threshold'
    assert saved['classes'][0]['oLRP_FP'] == 0.5
    assert 'segm_classes' not in saved


def test_olrp_by_object_size(tmp_path):
    results, _ = evaluate(tmp_path, metric=['bbox', 'segm'])
    assert [results[f'coco/bbox_moLRP_{s}'] for s in 'sml'] == [0.7, 0.0, -1.0]
    assert [results[f'coco/segm_moLRP_{s}'] for s in 'sml'] == [1.0, 0.0, -1.0]
    assert 'coco/bbox_moLRP_loc_s' not in results

    detailed, _ = evaluate(tmp_path, lrp_size_details=True)
    assert means(detailed, 'bbox', '_s') == [0.7, 0.2, 0.0, 0.5]
    assert means(detailed, 'bbox', '_m') == [0.0, 0.0, 0.0, 0.0]
    assert means(detailed, 'bbox', '_l') == [-1.0] * 4


def test_an_unknown_tie_rule_is_refused():
    with pytest.raises(ValueError, match='lrp_ties must be one of'):
        CocoLRPMetric(lrp_ties='stable')

import math

import numpy as np
import pytest
from pycocotools.cocoeval import COCOeval

from mmdet_alrp.evaluation import coco_class_matches, optimal_lrp

from ..coco_scenes import build_coco, class_view, evaluate, random_scene
from ..lrp_oracle import box_overlap, brute_force_olrp


def assert_same(value, expected):
    if math.isnan(expected):
        assert math.isnan(value)
    else:
        assert value == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize('seed', range(6))
@pytest.mark.parametrize('max_dets', [100, 3])
@pytest.mark.parametrize('ties', ['position', 'threshold'])
def test_olrp_from_cocoeval_equals_the_brute_force_oracle(seed, max_dets, ties):
    rng = np.random.default_rng(seed)
    num_cats = 3
    images = random_scene(rng, num_imgs=6, num_cats=num_cats)
    evaluation = evaluate(*build_coco(images, num_cats))
    matches = coco_class_matches(evaluation, 0.5, max_dets)
    assert [int(c) for c in evaluation.params.catIds] == [1, 2, 3]
    checked = 0
    for cat, m in zip(evaluation.params.catIds, matches):
        r = optimal_lrp(m.scores, m.is_tp, m.ious, m.num_gts, 0.5, m.is_ignored, ties)
        expected = brute_force_olrp(class_view(images, cat), 0.5, max_dets, ties)
        if expected is None:
            assert m.num_gts == 0 and math.isnan(r.olrp)
            continue
        checked += 1
        for key in ('olrp', 'loc', 'fp', 'fn', 'threshold'):
            assert_same(getattr(r, key), expected[key])
    assert checked > 0


def test_ious_are_those_of_the_matched_pairs():
    gt_box, det_box = (10.0, 10.0, 20.0, 20.0), (12.0, 11.0, 19.0, 22.0)
    images = [
        dict(
            gts=[(gt_box, 1, False), ((60.0, 60.0, 10.0, 10.0), 1, False)],
            dets=[
                (det_box, 1, 0.9),
                ((61.0, 60.0, 10.0, 9.0), 1, 0.4),
                ((80.0, 0.0, 5.0, 5.0), 1, 0.6),
            ],
        )
    ]
    (m,) = coco_class_matches(evaluate(*build_coco(images, 1)))
    assert not m.is_ignored.any()
    order = np.argsort(-m.scores)
    assert m.scores[order].tolist() == [0.9, 0.6, 0.4]
    assert m.is_tp[order].tolist() == [True, False, True]
    assert m.ious[order][0] == pytest.approx(box_overlap(det_box, gt_box, False), abs=1e-15)
    assert m.ious[order][2] == pytest.approx(81 / 109, abs=1e-15)
    assert m.num_gts == 2


def test_crowd_ground_truth_is_neither_false_negative_nor_false_positive():
    crowd = (50.0, 50.0, 30.0, 30.0)
    images = [
        dict(
            gts=[((0.0, 0.0, 10.0, 10.0), 1, False), (crowd, 1, True)],
            dets=[
                ((0.0, 0.0, 10.0, 10.0), 1, 0.9),
                ((55.0, 55.0, 10.0, 10.0), 1, 0.95),
                ((60.0, 52.0, 15.0, 8.0), 1, 0.5),
            ],
        )
    ]
    (m,) = coco_class_matches(evaluate(*build_coco(images, 1)))
    assert m.num_gts == 1
    assert m.scores.tolist() == [0.95, 0.9, 0.5]  # the image's score order
    assert m.is_ignored.tolist() == [True, False, True]  # the two on the crowd
    assert m.is_tp.tolist() == [False, True, False]
    r = optimal_lrp(m.scores, m.is_tp, m.ious, m.num_gts, is_ignored=m.is_ignored)
    assert (r.olrp, r.fp, r.fn, r.threshold) == (0.0, 0.0, 0.0, 0.9)


def test_category_with_only_crowd_ground_truth_has_none():
    images = [
        dict(gts=[((0.0, 0.0, 10.0, 10.0), 1, True)], dets=[((30.0, 0.0, 10.0, 10.0), 1, 0.9)])
    ]
    (m,) = coco_class_matches(evaluate(*build_coco(images, 1)))
    assert m.num_gts == 0 and m.is_tp.tolist() == [False]
    assert math.isnan(optimal_lrp(m.scores, m.is_tp, m.ious, m.num_gts, 0.5, m.is_ignored).olrp)


def test_bad_evaluations_are_rejected():
    images = [
        dict(gts=[((0.0, 0.0, 10.0, 10.0), 1, False)], dets=[((0.0, 0.0, 10.0, 10.0), 1, 0.9)])
    ]
    gt, dt = build_coco(images, 1)
    with pytest.raises(ValueError, match='not among the evaluated iouThrs'):
        coco_class_matches(evaluate(gt, dt, iou_thrs=[0.75]))
    with pytest.raises(ValueError, match='exceeds the evaluated maxDets'):
        coco_class_matches(evaluate(gt, dt, max_dets=[1, 10]))
    with pytest.raises(ValueError, match='run evaluate'):
        coco_class_matches(COCOeval(gt, dt, 'bbox'))

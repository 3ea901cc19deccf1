import math

import numpy as np
import pytest

from mmdet_alrp.evaluation import optimal_lrp


def lrp(scores, is_tp, ious, num_gts):
    return optimal_lrp(
        np.array(scores, dtype=float),
        np.array(is_tp, dtype=bool),
        np.array(ious, dtype=float),
        num_gts,
    )


def test_perfect_detections_give_zero():
    r = lrp([0.9, 0.7, 0.3], [True, True, True], [1.0, 1.0, 1.0], 3)
    assert (r.olrp, r.loc, r.fp, r.fn, r.threshold, r.num_gts) == (0.0, 0.0, 0.0, 0.0, 0.3, 3)


def test_only_false_positives_give_one_at_the_highest_threshold():
    r = lrp([0.2, 0.9, 0.5], [False] * 3, [0.0] * 3, 2)
    assert (r.olrp, r.fp, r.fn, r.threshold) == (1.0, 1.0, 1.0, 0.9)
    assert math.isnan(r.loc)


def test_one_detection_at_iou_075():
    r = lrp([0.6], [True], [0.75], 1)
    assert r.olrp == pytest.approx(0.5)  # (0.25 / 0.5) / 1
    assert r.loc == pytest.approx(0.25)
    assert (r.fp, r.fn, r.threshold) == (0.0, 0.0, 0.6)


def test_the_optimum_trades_recall_against_false_positives():
    # G = 2. s=0.9: (0.1/0.5 + 0 + 1) / 2 = 0.6; s=0.8: (0.2 + 1 + 1) / 3 = 0.733;
    # s=0.7: (0.2 + 0.8 + 1 + 0) / 3 = 0.667
    r = lrp([0.7, 0.9, 0.8], [True, True, False], [0.6, 0.9, 0.0], 2)
    assert r.olrp == pytest.approx(0.6)
    assert r.loc == pytest.approx(0.1)
    assert (r.fp, r.fn, r.threshold) == (0.0, 0.5, 0.9)


def test_a_threshold_does_not_cut_between_equal_scores():
    # G = 1: the TP and an FP share score 0.8; the TP comes first in input (and sorted) order.
    # Cutting after the TP alone would give 0.5; only {0.9} (LRP 1) and {all} (2/3) exist.
    r = lrp([0.9, 0.8, 0.8], [False, True, False], [0.0, 1.0, 0.0], 1)
    assert r.olrp == pytest.approx(2 / 3)
    assert (r.fp, r.fn, r.threshold) == (pytest.approx(2 / 3), 0.0, 0.8)


def test_equal_minima_take_the_highest_threshold():
    # G = 2: {0.9 TP at IoU 1} -> (0 + 0 + 1) / 2 = 0.5; {0.9, 0.8 FP} -> 2 / 3;
    # all three (second TP at IoU 0.75) -> (0.25 / 0.5 + 1 + 0) / 3 = 0.5: the tie goes to 0.9.
    r = lrp([0.9, 0.8, 0.7], [True, False, True], [1.0, 0.0, 0.75], 2)
    assert r.olrp == pytest.approx(0.5)
    assert r.threshold == 0.9


def test_class_without_ground_truth_is_undefined():
    r = lrp([0.9], [False], [0.0], 0)
    assert r.num_gts == 0
    assert all(math.isnan(v) for v in (r.olrp, r.loc, r.fp, r.fn, r.threshold))


def test_class_with_ground_truth_but_no_detection_is_all_false_negatives():
    r = lrp([], [], [], 4)
    assert (r.olrp, r.fn, r.num_gts) == (1.0, 1.0, 4)
    assert all(math.isnan(v) for v in (r.loc, r.fp, r.threshold))


@pytest.mark.parametrize(
    'args, message',
    [
        (([0.5], [True], [0.9], 1, 1.0), 'tau'),
        (([0.5, 0.4], [True], [0.9], 1, 0.5), 'one length'),
        (([0.5], [1], [0.9], 1, 0.5), 'bool'),
        (([np.nan], [True], [0.9], 1, 0.5), 'finite'),
        (([0.5], [True], [0.9], -1, 0.5), 'non-negative'),
        (([0.5, 0.4], [True, True], [0.9, 0.8], 1, 0.5), 'true positives for only'),
        (([0.5], [True], [0.4], 1, 0.5), r'\[tau, 1\]'),
    ],
)
def test_bad_input_is_rejected(args, message):
    scores, is_tp, ious, num_gts, tau = args
    with pytest.raises(ValueError, match=message):
        optimal_lrp(
            np.array(scores, dtype=float),
            np.array(is_tp),
            np.array(ious, dtype=float),
            num_gts,
            tau,
        )

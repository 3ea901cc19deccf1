import math

import numpy as np
import pytest

from mmdet_alrp.evaluation import optimal_lrp


def lrp(scores, is_tp, ious, num_gts, is_ignored=None, ties='position'):
    return optimal_lrp(
        np.array(scores, dtype=float),
        np.array(is_tp, dtype=bool),
        np.array(ious, dtype=float),
        num_gts,
        is_ignored=None if is_ignored is None else np.array(is_ignored, dtype=bool),
        ties=ties,
    )


def test_perfect_detections_give_zero():
    r = lrp([0.9, 0.7, 0.3], [True, True, True], [1.0, 1.0, 1.0], 3)
    assert (r.olrp, r.loc, r.fp, r.fn, r.threshold, r.num_gts) == (0.0, 0.0, 0.0, 0.0, 0.3, 3)


@pytest.mark.parametrize('ties', ['position', 'threshold'])
def test_only_false_positives_give_one_and_leave_fp_and_threshold_undefined(ties):
    """LRP-Error: a class with detections but no true positive has oLRP 1 and FN 1; its loc and
    FP components and its threshold are undefined (NaN)."""
    r = lrp([0.2, 0.9, 0.5], [False] * 3, [0.0] * 3, 2, [False, False, True], ties)
    assert (r.olrp, r.fn, r.num_gts) == (1.0, 1.0, 2)
    assert all(math.isnan(v) for v in (r.loc, r.fp, r.threshold))


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


def test_equal_scores_are_cut_between_in_input_order():
    # G = 1: the TP and an FP share score 0.8; the TP comes first in input (and sorted) order.
    # LRP-Error evaluates after every detection: after the TP, (0 + 1 + 0) / 2 = 0.5.
    r = lrp([0.9, 0.8, 0.8], [False, True, False], [0.0, 1.0, 0.0], 1)
    assert r.olrp == pytest.approx(0.5)
    assert (r.loc, r.fp, r.fn, r.threshold) == (0.0, 0.5, 0.0, 0.8)
    # the FP first among the equal scores: after it, 1; after both, 2 / 3
    r = lrp([0.9, 0.8, 0.8], [False, False, True], [0.0, 0.0, 1.0], 1)
    assert r.olrp == pytest.approx(2 / 3)
    assert r.fp == pytest.approx(2 / 3)


def test_a_threshold_does_not_cut_between_equal_scores():
    # The first case above: only {0.9} (LRP 1) and {all} (2/3) exist for a threshold.
    r = lrp([0.9, 0.8, 0.8], [False, True, False], [0.0, 1.0, 0.0], 1, ties='threshold')
    assert r.olrp == pytest.approx(2 / 3)
    assert (r.fp, r.fn, r.threshold) == (pytest.approx(2 / 3), 0.0, 0.8)


def test_ignored_detections_count_neither_as_tp_nor_as_fp():
    # G = 2: 0.9 ignored, 0.8 TP at IoU 0.75, 0.7 FP, 0.6 ignored. After 0.8: (0.5 + 0 + 1) / 2.
    r = lrp([0.9, 0.8, 0.7, 0.6], [False, True, False, False], [0, 0.75, 0, 0], 2,
            [True, False, False, True])  # fmt: skip
    assert (r.olrp, r.loc, r.fp, r.fn, r.threshold) == (0.75, 0.25, 0.0, 0.5, 0.8)


def test_an_optimum_before_any_counted_detection_leaves_loc_and_fp_undefined():
    # G = 1, a TP at IoU 0.5 exactly: LRP 1 everywhere, the first minimum is after the ignored
    # detection that scores highest, which keeps no TP and no FP (LRP-Error's argmin).
    r = lrp([0.9, 0.8], [False, True], [0.0, 0.5], 1, [True, False])
    assert (r.olrp, r.fn, r.threshold) == (1.0, 1.0, 0.9)
    assert math.isnan(r.loc) and math.isnan(r.fp)


def test_equal_minima_take_the_highest_threshold():
    # G = 2: {0.9 TP at IoU 1} -> (0 + 0 + 1) / 2 = 0.5; {0.9, 0.8 FP} -> 2 / 3;
    # all three (second TP at IoU 0.75) -> (0.25 / 0.5 + 1 + 0) / 3 = 0.5: the tie goes to 0.9.
    r = lrp([0.9, 0.8, 0.7], [True, False, True], [1.0, 0.0, 0.75], 2)
    assert r.olrp == pytest.approx(0.5)
    assert r.threshold == 0.9


def test_the_lrp_arithmetic_is_bit_for_bit_that_of_cumulative_sums():
    # the IoUs summed as LRP-Error sums them: total_loc = N_TP - cumsum(IoU)
    ious = np.array([0.61, 0.83, 0.97, 0.55, 0.72])
    r = lrp([0.9, 0.8, 0.7, 0.6, 0.5], [True] * 5, ious, 7)
    total_loc = np.arange(1, 6) - np.cumsum(ious)
    expected = (total_loc / 0.5 + 0 + (7 - np.arange(1, 6))) / 7
    assert r.olrp == expected.min()


def test_class_without_ground_truth_is_undefined():
    r = lrp([0.9], [False], [0.0], 0)
    assert r.num_gts == 0
    assert all(math.isnan(v) for v in (r.olrp, r.loc, r.fp, r.fn, r.threshold))


def test_class_with_ground_truth_but_no_detection_is_all_false_negatives():
    r = lrp([], [], [], 4)
    assert (r.olrp, r.fn, r.num_gts) == (1.0, 1.0, 4)
    assert all(math.isnan(v) for v in (r.loc, r.fp, r.threshold))


@pytest.mark.parametrize(
    'changes, message',
    [
        (dict(tau=1.0), 'tau'),
        (dict(scores=[0.5, 0.4]), 'one length'),
        (dict(is_tp=[1]), 'bool'),
        (dict(is_ignored=[True]), 'both a true positive and ignored'),
        (dict(ties='ulp'), 'ties must be one of'),
        (dict(scores=[np.nan]), 'finite'),
        (dict(num_gts=-1), 'non-negative'),
        (dict(num_gts=0), 'true positives for only'),
        (dict(ious=[0.4]), r'\[tau, 1\]'),
    ],
)
def test_bad_input_is_rejected(changes, message):
    args = dict(scores=[0.5], is_tp=[True], ious=[0.9], num_gts=1, is_ignored=[False])
    args.update(changes)
    with pytest.raises(ValueError, match=message):
        optimal_lrp(
            np.array(args.pop('scores'), dtype=float),
            np.array(args.pop('is_tp')),
            np.array(args.pop('ious'), dtype=float),
            is_ignored=np.array(args.pop('is_ignored')),
            **args,
        )

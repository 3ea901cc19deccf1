"""Optimal Localisation-Recall-Precision (oLRP) of one class, in one pass over its detections.

LRP (Oksuz et al., ECCV 2018) of the detections kept by a score threshold, matched to the
ground truth at IoU ``tau``::

    LRP = (sum_TP (1 - IoU) / (1 - tau) + N_FP + N_FN) / (N_TP + N_FP + N_FN)

With the detections sorted by descending score, the detections kept by a threshold are a prefix,
and since N_TP + N_FN = number of ground truths G, the denominator is G + N_FP. Cumulative sums
of the TP count, the FP count and the localisation error (1 - IoU) therefore give LRP at every
threshold at once. A threshold can only cut between two different scores, so only the last
position of each run of equal scores is a candidate. oLRP is the minimum over the candidates.
"""

from typing import NamedTuple

import numpy as np


class ClassOLRP(NamedTuple):
    """oLRP of one class and its components at the optimal threshold.

    Attributes:
        olrp (float): minimum LRP over the score thresholds, in [0, 1].
        loc (float): mean (1 - IoU) of the true positives; NaN without true positive.
        fp (float): N_FP / (N_TP + N_FP); NaN without detection.
        fn (float): N_FN / G.
        threshold (float): the optimal score threshold (keep scores >= it); the highest one when
            several reach the minimum; NaN without detection.
        num_gts (int): G, the number of (non-ignored) ground truths.

    A class without ground truth (G = 0) has nothing to recall: every field but ``num_gts`` is
    NaN and the class is left out of the means over classes. A class with ground truth but no
    detection has oLRP 1 (all false negatives): fn = 1, loc = fp = threshold = NaN.
    """

    olrp: float
    loc: float
    fp: float
    fn: float
    threshold: float
    num_gts: int


def optimal_lrp(
    scores: np.ndarray, is_tp: np.ndarray, ious: np.ndarray, num_gts: int, tau: float = 0.5
) -> ClassOLRP:
    """oLRP of one class from its matched detections.

    Args:
        scores (np.ndarray): shape (N, ), scores of the detections that count (detections
            matched to ignored or crowd ground truth must be left out by the caller).
        is_tp (np.ndarray): shape (N, ), bool, True for a true positive, False for a false
            positive.
        ious (np.ndarray): shape (N, ), IoU of each true positive with its ground truth, in
            [tau, 1]; entries of false positives are not read.
        num_gts (int): G, the number of non-ignored ground truths of the class.
        tau (float): the IoU threshold of the matching, in (0, 1). Defaults to 0.5.

    Returns:
        ClassOLRP: oLRP, its components and the optimal threshold.
    """
    scores = np.asarray(scores, dtype=np.float64)
    is_tp = np.asarray(is_tp)
    ious = np.asarray(ious, dtype=np.float64)
    _check(scores, is_tp, ious, num_gts, tau)
    num_gts = int(num_gts)
    nan = float('nan')
    if num_gts == 0:
        return ClassOLRP(nan, nan, nan, nan, nan, 0)
    if scores.size == 0:
        return ClassOLRP(1.0, nan, nan, 1.0, nan, num_gts)

    order = np.argsort(-scores, kind='stable')
    scores = scores[order]
    is_tp = is_tp[order]
    loc_error = np.where(is_tp, 1.0 - ious[order], 0.0)
    cum_tp = np.cumsum(is_tp)
    cum_fp = np.arange(1, scores.size + 1) - cum_tp
    cum_loc = np.cumsum(loc_error)
    # last position of every run of equal scores: the only places a threshold can cut
    cuts = np.flatnonzero(np.append(scores[1:] != scores[:-1], True))
    lrp = (cum_loc[cuts] / (1.0 - tau) + cum_fp[cuts] + (num_gts - cum_tp[cuts])) / (
        num_gts + cum_fp[cuts]
    )
    best = int(np.argmin(lrp))  # the first minimum: the highest threshold among equals
    cut = cuts[best]
    num_tp, num_fp = int(cum_tp[cut]), int(cum_fp[cut])
    return ClassOLRP(
        olrp=float(lrp[best]),
        loc=float(cum_loc[cut] / num_tp) if num_tp else nan,
        fp=num_fp / (num_tp + num_fp),
        fn=(num_gts - num_tp) / num_gts,
        threshold=float(scores[cut]),
        num_gts=num_gts,
    )


def _check(
    scores: np.ndarray, is_tp: np.ndarray, ious: np.ndarray, num_gts: int, tau: float
) -> None:
    """Raise ValueError on inputs that do not describe one class's matching."""
    if not 0.0 < tau < 1.0:
        raise ValueError(f'tau must lie in (0, 1), got {tau}')
    if scores.ndim != 1 or is_tp.shape != scores.shape or ious.shape != scores.shape:
        raise ValueError(
            'scores, is_tp and ious must be 1-D of one length, got shapes '
            f'{scores.shape}, {is_tp.shape} and {ious.shape}'
        )
    if is_tp.dtype != np.bool_:
        raise ValueError(f'is_tp must be a bool array, got dtype {is_tp.dtype}')
    if not np.isfinite(scores).all():
        raise ValueError('scores must be finite')
    if int(num_gts) != num_gts or num_gts < 0:
        raise ValueError(f'num_gts must be a non-negative integer, got {num_gts}')
    if int(is_tp.sum()) > num_gts:
        raise ValueError(f'{int(is_tp.sum())} true positives for only {num_gts} ground truths')
    tp_ious = ious[is_tp]
    if not ((tp_ious >= tau) & (tp_ious <= 1.0)).all():
        raise ValueError(f'the IoU of every true positive must lie in [tau, 1] = [{tau}, 1]')

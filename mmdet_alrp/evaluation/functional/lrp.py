"""Optimal Localisation-Recall-Precision (oLRP) of one class, in one pass over its detections.

LRP (Oksuz et al., ECCV 2018) of the first detections in descending score, matched to the
ground truth at IoU ``tau``::

    LRP = (sum_TP (1 - IoU) / (1 - tau) + N_FP + N_FN) / (N_TP + N_FP + N_FN)

Since N_TP + N_FN = number of ground truths G, cumulative sums of the TP count, the FP count and
the IoUs give LRP after every detection at once. oLRP is the minimum, taken as the authors'
LRP-Error toolkit (github kemaloksuz/LRP-Error, ``COCOeval.accumulate``) takes it:

- The detections are sorted by descending score, stably: equal scores keep their input order.
  Ignored detections (matched to crowd ground truth, or unmatched outside the evaluated area
  range) keep their places in that order; they add neither a TP nor an FP.
- ``ties='position'`` (LRP-Error's definition): LRP is evaluated after every detection, so
  equal scores are cut between. ``ties='threshold'``: only after the last of equal scores,
  where a score threshold can cut; this is the LRP that deploying the optimal threshold gives.
- The first minimum wins (the highest threshold among equal minima).
- With no true positive at all, oLRP is 1 and FN 1; the localisation and FP components and the
  threshold are undefined (NaN).
- At an optimum that keeps no counted detection (only ignored ones before it, which happens
  only when the minimum is exactly 1), the localisation and FP components are 0/0: NaN.
"""

from typing import NamedTuple, Optional

import numpy as np

#: The two treatments of equal scores (see the module docstring).
TIES = ('position', 'threshold')


class ClassOLRP(NamedTuple):
    """oLRP of one class and its components at the optimal threshold.

    Attributes:
        olrp (float): minimum LRP, in [0, 1].
        loc (float): mean (1 - IoU) of the true positives kept; NaN without any.
        fp (float): N_FP / (N_TP + N_FP); NaN without a true positive or a counted detection.
        fn (float): N_FN / G.
        threshold (float): the score of the detection at the optimum; NaN without a true
            positive.
        num_gts (int): G, the number of (non-ignored) ground truths.

    A class without ground truth (G = 0) has nothing to recall: every field but ``num_gts`` is
    NaN and the class is left out of the means over classes. A class with ground truth but no
    true positive has oLRP 1 and FN 1, the other fields NaN.
    """

    olrp: float
    loc: float
    fp: float
    fn: float
    threshold: float
    num_gts: int


def optimal_lrp(
    scores: np.ndarray,
    is_tp: np.ndarray,
    ious: np.ndarray,
    num_gts: int,
    tau: float = 0.5,
    is_ignored: Optional[np.ndarray] = None,
    ties: str = 'position',
) -> ClassOLRP:
    """oLRP of one class from its matched detections.

    Args:
        scores (np.ndarray): shape (N, ), scores of the detections, in the order that breaks
            ties (LRP-Error's: images in evaluation order, each image's detections by
            descending score).
        is_tp (np.ndarray): shape (N, ), bool, True for a true positive.
        ious (np.ndarray): shape (N, ), IoU of each true positive with its ground truth, in
            [tau, 1]; other entries are not read.
        num_gts (int): G, the number of non-ignored ground truths of the class.
        tau (float): the IoU threshold of the matching, in (0, 1). Defaults to 0.5.
        is_ignored (np.ndarray, optional): shape (N, ), bool, True for an ignored detection
            (neither TP nor FP). Defaults to None (none ignored).
        ties (str): 'position' or 'threshold' (see the module docstring). Defaults to
            'position'.

    Returns:
        ClassOLRP: oLRP, its components and the optimal threshold.
    """
    scores = np.asarray(scores, dtype=np.float64)
    is_tp = np.asarray(is_tp)
    ious = np.asarray(ious, dtype=np.float64)
    is_ignored = (
        np.zeros(scores.shape, dtype=bool) if is_ignored is None else np.asarray(is_ignored)
    )
    _check(scores, is_tp, ious, is_ignored, num_gts, tau, ties)
    num_gts = int(num_gts)
    nan = float('nan')
    if num_gts == 0:
        return ClassOLRP(nan, nan, nan, nan, nan, 0)
    if not is_tp.any():
        return ClassOLRP(1.0, nan, nan, 1.0, nan, num_gts)

    order = np.argsort(-scores, kind='stable')
    scores = scores[order]
    is_tp = is_tp[order]
    is_fp = ~is_tp & ~is_ignored[order]
    num_tp = np.cumsum(is_tp)
    num_fp = np.cumsum(is_fp)
    num_fn = num_gts - num_tp
    total_loc = num_tp - np.cumsum(np.where(is_tp, ious[order], 0.0))
    lrp = (total_loc / (1.0 - tau) + num_fp + num_fn) / (num_tp + num_fp + num_fn)
    if ties == 'position':
        candidates = np.arange(scores.size)
    else:  # the last of every run of equal scores
        candidates = np.flatnonzero(np.append(scores[1:] != scores[:-1], True))
    best = int(candidates[np.argmin(lrp[candidates])])
    kept_tp, kept_fp = int(num_tp[best]), int(num_fp[best])
    return ClassOLRP(
        olrp=float(lrp[best]),
        loc=float(total_loc[best] / kept_tp) if kept_tp else nan,
        fp=kept_fp / (kept_tp + kept_fp) if kept_tp + kept_fp else nan,
        fn=int(num_fn[best]) / num_gts,
        threshold=float(scores[best]),
        num_gts=num_gts,
    )


def _check(
    scores: np.ndarray,
    is_tp: np.ndarray,
    ious: np.ndarray,
    is_ignored: np.ndarray,
    num_gts: int,
    tau: float,
    ties: str,
) -> None:
    """Raise ValueError on inputs that do not describe one class's matching."""
    if ties not in TIES:
        raise ValueError(f'ties must be one of {TIES}, got {ties!r}')
    if not 0.0 < tau < 1.0:
        raise ValueError(f'tau must lie in (0, 1), got {tau}')
    shapes = (is_tp.shape, ious.shape, is_ignored.shape)
    if scores.ndim != 1 or any(shape != scores.shape for shape in shapes):
        raise ValueError(
            'scores, is_tp, ious and is_ignored must be 1-D of one length, got shapes '
            f'{scores.shape}, {is_tp.shape}, {ious.shape} and {is_ignored.shape}'
        )
    if is_tp.dtype != np.bool_ or is_ignored.dtype != np.bool_:
        raise ValueError(
            f'is_tp and is_ignored must be bool arrays, got {is_tp.dtype}, {is_ignored.dtype}'
        )
    if (is_tp & is_ignored).any():
        raise ValueError('a detection cannot be both a true positive and ignored')
    if not np.isfinite(scores).all():
        raise ValueError('scores must be finite')
    if int(num_gts) != num_gts or num_gts < 0:
        raise ValueError(f'num_gts must be a non-negative integer, got {num_gts}')
    if int(is_tp.sum()) > num_gts:
        raise ValueError(f'{int(is_tp.sum())} true positives for only {num_gts} ground truths')
    tp_ious = ious[is_tp]
    if not ((tp_ious >= tau) & (tp_ious <= 1.0)).all():
        raise ValueError(f'the IoU of every true positive must lie in [tau, 1] = [{tau}, 1]')

"""Per-class detections matched by pycocotools' COCOeval, as oLRP needs them.

``COCOeval.evaluate()`` matches the detections of every (image, category) greedily in score
order to the ground truths. Its ``evalImgs`` hold, per category, area range and image:
``dtIds`` (D, ) and ``dtScores`` (D, ), the detections in descending score (stable sort) cut at
``maxDets[-1]``; ``dtMatches`` (T, D), the id of the ground truth each detection matched at each
IoU threshold (0 if none); ``dtIgnore`` (T, D), whether it is ignored (matched to a crowd
ground truth); ``gtIgnore`` (G, ). The IoU of a true positive is recomputed from its box and its
ground truth's box with ``pycocotools.mask.iou``, the function COCOeval matched with, so it is
the very number the matching compared with the threshold. Only ``evalImgs``, ``params``,
``cocoGt`` and ``cocoDt`` are read, which mmdet's multi-process ``COCOevalMP`` fills as well.

Greedy matching in score order makes the matches of the first k detections of an image
independent of the later ones, so cutting the evaluated detections at ``max_dets`` gives exactly
the matching an evaluation at ``maxDets = max_dets`` would. As in COCO's AP, the cut is per image
and category.
"""

from typing import List, NamedTuple

import numpy as np
from pycocotools import mask as mask_utils

#: Matched pairs per call of ``mask_utils.iou`` (which computes a block x block matrix).
PAIR_BLOCK = 64


class ClassMatches(NamedTuple):
    """The detections of one class over all images, as ``optimal_lrp`` takes them.

    Attributes:
        scores (np.ndarray): shape (N, ), float64, the detections that are not ignored.
        is_tp (np.ndarray): shape (N, ), bool, True for a true positive.
        ious (np.ndarray): shape (N, ), float64, IoU with the matched ground truth (0 for a
            false positive).
        num_gts (int): number of ground truths not ignored.
    """

    scores: np.ndarray
    is_tp: np.ndarray
    ious: np.ndarray
    num_gts: int


def coco_class_matches(coco_eval, iou_thr: float = 0.5, max_dets: int = 100) -> List[ClassMatches]:
    """Detections of every category matched at ``iou_thr``, area range 'all', ``max_dets``.

    Args:
        coco_eval (pycocotools.cocoeval.COCOeval): a 'bbox' evaluation whose ``evaluate()`` has
            run, with ``useCats`` on, ``iou_thr`` among its ``iouThrs`` and an area range
            labelled 'all'.
        iou_thr (float): IoU threshold of the matching. Defaults to 0.5.
        max_dets (int): detections per image and category that count, at most the
            ``maxDets[-1]`` the evaluation ran with. Defaults to 100.

    Returns:
        list[ClassMatches]: one per category of ``coco_eval.params.catIds``, in that order.
    """
    params = coco_eval.params
    _check(coco_eval, iou_thr, max_dets)
    thr = int(np.flatnonzero(np.isclose(params.iouThrs, iou_thr))[0])
    num_areas, num_imgs = len(params.areaRng), len(params.imgIds)
    area = params.areaRngLbl.index('all')
    matches = []
    for k in range(len(params.catIds)):
        start = (k * num_areas + area) * num_imgs
        entries = [e for e in coco_eval.evalImgs[start : start + num_imgs] if e is not None]
        num_gts = sum(len(e['gtIgnore']) - int(np.count_nonzero(e['gtIgnore'])) for e in entries)
        if not entries:
            matches.append(ClassMatches(np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0), 0))
            continue
        keep = ~np.concatenate([e['dtIgnore'][thr, :max_dets] for e in entries]).astype(bool)
        matched = np.concatenate([e['dtMatches'][thr, :max_dets] for e in entries])[keep]
        dt_ids = np.concatenate([e['dtIds'][:max_dets] for e in entries]).astype(np.int64)[keep]
        scores = np.concatenate([e['dtScores'][:max_dets] for e in entries]).astype(np.float64)
        is_tp = matched > 0
        ious = np.zeros(is_tp.size)
        ious[is_tp] = _pair_ious(coco_eval, dt_ids[is_tp], matched[is_tp].astype(np.int64))
        matches.append(ClassMatches(scores[keep], is_tp, ious, num_gts))
    return matches


def _pair_ious(coco_eval, dt_ids: np.ndarray, gt_ids: np.ndarray) -> np.ndarray:
    """IoU of each detection with its matched (non-crowd) ground truth, shape (n, ).

    ``mask_utils.iou`` computes all pairs of its two lists, so the n pairs go by blocks of
    ``PAIR_BLOCK`` whose diagonals are the wanted IoUs.
    """
    dt_boxes = np.array(
        [coco_eval.cocoDt.anns[i]['bbox'] for i in dt_ids.tolist()], dtype=np.float64
    ).reshape(-1, 4)
    gt_boxes = np.array(
        [coco_eval.cocoGt.anns[i]['bbox'] for i in gt_ids.tolist()], dtype=np.float64
    ).reshape(-1, 4)
    ious = np.empty(len(dt_ids))
    for s in range(0, len(dt_ids), PAIR_BLOCK):
        block = slice(s, s + PAIR_BLOCK)
        not_crowd = [0] * len(gt_boxes[block])
        ious[block] = np.diagonal(mask_utils.iou(dt_boxes[block], gt_boxes[block], not_crowd))
    return ious


def _check(coco_eval, iou_thr: float, max_dets: int) -> None:
    """Raise ValueError unless ``coco_eval`` is an evaluated per-category 'bbox' evaluation."""
    params = coco_eval.params
    if params.iouType != 'bbox':
        raise ValueError(f"oLRP here needs a 'bbox' evaluation, got iouType {params.iouType!r}")
    if not params.useCats:
        raise ValueError('oLRP is per category: COCOeval.params.useCats must be 1')
    if not np.isclose(params.iouThrs, iou_thr).any():
        raise ValueError(
            f'IoU threshold {iou_thr} is not among the evaluated iouThrs {list(params.iouThrs)}'
        )
    if 'all' not in params.areaRngLbl:
        raise ValueError(f"no area range labelled 'all' among {params.areaRngLbl}")
    if max_dets > params.maxDets[-1]:
        raise ValueError(
            f'max_dets={max_dets} exceeds the evaluated maxDets[-1]={params.maxDets[-1]}'
        )
    expected = len(params.catIds) * len(params.areaRng) * len(params.imgIds)
    if not isinstance(coco_eval.evalImgs, list) or len(coco_eval.evalImgs) != expected:
        raise ValueError(
            'coco_eval.evalImgs does not hold catIds x areaRng x imgIds entries: '
            'run evaluate() first, and do not change params after it'
        )

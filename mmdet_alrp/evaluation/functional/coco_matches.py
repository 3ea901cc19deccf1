"""Per-class detections matched by pycocotools' COCOeval, as oLRP needs them.

``COCOeval.evaluate()`` matches the detections of every (image, category) greedily in score
order to the ground truths. Its ``evalImgs`` hold, per category, area range and image:
``dtIds`` (D, ) and ``dtScores`` (D, ), the detections in descending score (stable sort) cut at
``maxDets[-1]``; ``dtMatches`` (T, D), the id of the ground truth each detection matched at each
IoU threshold (0 if none); ``dtIgnore`` (T, D), whether it is ignored (matched to a crowd or
out-of-range ground truth, or unmatched and outside the area range); ``gtIgnore`` (G, ). The IoU
of a true positive is recomputed from its box (or mask) and its ground truth's with
``pycocotools.mask.iou``, the function COCOeval matched with, so it is the very number the
matching compared with the threshold. Only ``evalImgs``, ``params``, ``cocoGt`` and ``cocoDt``
are read, which mmdet's multi-process ``COCOevalMP`` fills as well.

The detections of a class are concatenated as the authors' LRP-Error toolkit concatenates them
(``COCOeval.accumulate``): images in the order of ``params.imgIds``, each image's detections in
its own descending-score order, ignored ones included (they break ties by their place).

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
        scores (np.ndarray): shape (N, ), float64, every detection evaluated (ignored ones
            included), in LRP-Error's concatenation order.
        is_tp (np.ndarray): shape (N, ), bool, True for a true positive.
        is_ignored (np.ndarray): shape (N, ), bool, True for an ignored detection.
        ious (np.ndarray): shape (N, ), float64, IoU with the matched ground truth (0 unless a
            true positive).
        num_gts (int): number of ground truths not ignored.
    """

    scores: np.ndarray
    is_tp: np.ndarray
    is_ignored: np.ndarray
    ious: np.ndarray
    num_gts: int


def coco_class_matches(
    coco_eval, iou_thr: float = 0.5, max_dets: int = 100, area: str = 'all'
) -> List[ClassMatches]:
    """Detections of every category matched at ``iou_thr`` in one area range, ``max_dets``.

    Args:
        coco_eval (pycocotools.cocoeval.COCOeval): a 'bbox' or 'segm' evaluation whose
            ``evaluate()`` has run, with ``useCats`` on, ``iou_thr`` among its ``iouThrs`` and
            ``area`` among its ``areaRngLbl``.
        iou_thr (float): IoU threshold of the matching. Defaults to 0.5.
        max_dets (int): detections per image and category that count, at most the
            ``maxDets[-1]`` the evaluation ran with. Defaults to 100.
        area (str): label of the area range ('all', 'small', 'medium', 'large' in COCO's
            default parameters). Defaults to 'all'.

    Returns:
        list[ClassMatches]: one per category of ``coco_eval.params.catIds``, in that order.
    """
    params = coco_eval.params
    _check(coco_eval, iou_thr, max_dets, area)
    thr = int(np.flatnonzero(np.isclose(params.iouThrs, iou_thr))[0])
    num_areas, num_imgs = len(params.areaRng), len(params.imgIds)
    area_index = params.areaRngLbl.index(area)
    matches = []
    for k in range(len(params.catIds)):
        start = (k * num_areas + area_index) * num_imgs
        entries = [e for e in coco_eval.evalImgs[start : start + num_imgs] if e is not None]
        num_gts = sum(len(e['gtIgnore']) - int(np.count_nonzero(e['gtIgnore'])) for e in entries)
        if not entries:
            empty = np.zeros(0)
            matches.append(ClassMatches(empty, empty.astype(bool), empty.astype(bool), empty, 0))
            continue
        is_ignored = np.concatenate([e['dtIgnore'][thr, :max_dets] for e in entries]).astype(bool)
        matched = np.concatenate([e['dtMatches'][thr, :max_dets] for e in entries])
        dt_ids = np.concatenate([e['dtIds'][:max_dets] for e in entries]).astype(np.int64)
        scores = np.concatenate([e['dtScores'][:max_dets] for e in entries]).astype(np.float64)
        is_tp = (matched > 0) & ~is_ignored
        ious = np.zeros(is_tp.size)
        ious[is_tp] = _matched_ious(coco_eval, dt_ids[is_tp], matched[is_tp].astype(np.int64))
        matches.append(ClassMatches(scores, is_tp, is_ignored, ious, num_gts))
    return matches


def _matched_ious(coco_eval, dt_ids: np.ndarray, gt_ids: np.ndarray) -> np.ndarray:
    """IoU of each detection with its matched ground truth: boxes for a 'bbox' evaluation,
    masks (RLE, converted as COCOeval converts them) for 'segm'."""
    if coco_eval.params.iouType == 'bbox':
        return _diagonal_ious(_boxes(coco_eval.cocoDt, dt_ids), _boxes(coco_eval.cocoGt, gt_ids))
    dt_masks = [coco_eval.cocoDt.annToRLE(coco_eval.cocoDt.anns[i]) for i in dt_ids.tolist()]
    gt_masks = [coco_eval.cocoGt.annToRLE(coco_eval.cocoGt.anns[i]) for i in gt_ids.tolist()]
    return _diagonal_ious(dt_masks, gt_masks)


def _diagonal_ious(dt_regions, gt_regions) -> np.ndarray:
    """IoU of each detection region with the ground-truth region at its index (non-crowd),
    shape (n, ).

    Args:
        dt_regions, gt_regions: n xywh boxes each (array (n, 4)) or n RLE masks each (lists).

    ``mask_utils.iou`` computes all pairs of its two lists, so the n pairs go by blocks of
    ``PAIR_BLOCK`` whose diagonals are the wanted IoUs.
    """
    ious = np.empty(len(dt_regions))
    for s in range(0, len(dt_regions), PAIR_BLOCK):
        block = slice(s, s + PAIR_BLOCK)
        not_crowd = [0] * len(gt_regions[block])
        ious[block] = np.diagonal(mask_utils.iou(dt_regions[block], gt_regions[block], not_crowd))
    return ious


def _boxes(coco, ann_ids: np.ndarray) -> np.ndarray:
    """xywh boxes of the annotations, shape (n, 4), float64."""
    boxes = [coco.anns[i]['bbox'] for i in ann_ids.tolist()]
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


def _check(coco_eval, iou_thr: float, max_dets: int, area: str) -> None:
    """Raise ValueError unless ``coco_eval`` is an evaluated per-category 'bbox' or 'segm'
    evaluation."""
    params = coco_eval.params
    if params.iouType not in ('bbox', 'segm'):
        raise ValueError(f"oLRP here needs a 'bbox' or 'segm' evaluation, got {params.iouType!r}")
    if not params.useCats:
        raise ValueError('oLRP is per category: COCOeval.params.useCats must be 1')
    if not np.isclose(params.iouThrs, iou_thr).any():
        raise ValueError(
            f'IoU threshold {iou_thr} is not among the evaluated iouThrs {list(params.iouThrs)}'
        )
    if area not in params.areaRngLbl:
        raise ValueError(f'no area range labelled {area!r} among {params.areaRngLbl}')
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

"""Per-class detections matched by the lvis package's LVISEval, as oLRP needs them.

``LVISEval.evaluate()`` matches like COCOeval (greedy in score order, per image and category)
and fills ``eval_imgs``, per category, area range and image: ``dt_ids``, ``dt_scores`` (the
image's detections of the category in descending score, stable), ``dt_matches`` (T, D),
``dt_ignore`` (T, D) (matched to an ignored ground truth; unmatched outside the area range or of
a category not exhaustively annotated in the image) and ``gt_ignore``. Detections of categories
neither present nor marked absent in an image are not evaluated at all (LVIS's federated rule),
and ``LVISResults`` keeps the 300 highest-scoring detections of every image. As the authors'
LRP-Error toolkit does in its LVIS variant (``LVISEval.accumulate``), the detections of a class
are concatenated image after image (``params.img_ids`` order), each image's in its own score
order, ignored ones included.
"""

from typing import List

import numpy as np

from .coco_matches import ClassMatches, pair_ious


def lvis_class_matches(lvis_eval, iou_thr: float = 0.5, area: str = 'all') -> List[ClassMatches]:
    """Detections of every category matched at ``iou_thr`` in one area range.

    Args:
        lvis_eval (lvis.LVISEval): a 'bbox' or 'segm' evaluation whose ``evaluate()`` has run,
            with ``use_cats`` on and ``iou_thr`` among its ``iou_thrs``.
        iou_thr (float): IoU threshold of the matching. Defaults to 0.5.
        area (str): label of the area range. Defaults to 'all'.

    Returns:
        list[ClassMatches]: one per category of ``lvis_eval.params.cat_ids``, in that order.
    """
    params = lvis_eval.params
    _check(lvis_eval, iou_thr, area)
    thr = int(np.flatnonzero(np.isclose(params.iou_thrs, iou_thr))[0])
    num_areas, num_imgs = len(params.area_rng), len(params.img_ids)
    area_index = params.area_rng_lbl.index(area)
    matches = []
    for k in range(len(params.cat_ids)):
        start = (k * num_areas + area_index) * num_imgs
        entries = [e for e in lvis_eval.eval_imgs[start : start + num_imgs] if e is not None]
        num_gts = sum(len(e['gt_ignore']) - int(np.count_nonzero(e['gt_ignore'])) for e in entries)
        if not entries:
            empty = np.zeros(0)
            matches.append(ClassMatches(empty, empty.astype(bool), empty.astype(bool), empty, 0))
            continue
        is_ignored = np.concatenate([e['dt_ignore'][thr] for e in entries]).astype(bool)
        matched = np.concatenate([e['dt_matches'][thr] for e in entries])
        dt_ids = np.concatenate([e['dt_ids'] for e in entries]).astype(np.int64)
        scores = np.concatenate([e['dt_scores'] for e in entries]).astype(np.float64)
        is_tp = (matched > 0) & ~is_ignored
        ious = np.zeros(is_tp.size)
        ious[is_tp] = _pair_ious(lvis_eval, dt_ids[is_tp], matched[is_tp].astype(np.int64))
        matches.append(ClassMatches(scores, is_tp, is_ignored, ious, num_gts))
    return matches


def _pair_ious(lvis_eval, dt_ids: np.ndarray, gt_ids: np.ndarray) -> np.ndarray:
    """IoU of each detection with its matched ground truth (boxes, or masks for 'segm')."""
    regions = {}
    for name, api, ids in (('dt', lvis_eval.lvis_dt, dt_ids), ('gt', lvis_eval.lvis_gt, gt_ids)):
        anns = [api.anns[i] for i in ids.tolist()]
        if lvis_eval.params.iou_type == 'bbox':
            regions[name] = np.array([a['bbox'] for a in anns], dtype=np.float64).reshape(-1, 4)
        else:
            regions[name] = [api.ann_to_rle(a) for a in anns]
    return pair_ious(regions['dt'], regions['gt'])


def _check(lvis_eval, iou_thr: float, area: str) -> None:
    """Raise ValueError unless ``lvis_eval`` is an evaluated per-category evaluation."""
    params = lvis_eval.params
    if not params.use_cats:
        raise ValueError('oLRP is per category: LVISEval.params.use_cats must be 1')
    if not np.isclose(params.iou_thrs, iou_thr).any():
        raise ValueError(
            f'IoU threshold {iou_thr} is not among the evaluated iou_thrs {list(params.iou_thrs)}'
        )
    if area not in params.area_rng_lbl:
        raise ValueError(f'no area range labelled {area!r} among {params.area_rng_lbl}')
    expected = len(params.cat_ids) * len(params.area_rng) * len(params.img_ids)
    if not isinstance(lvis_eval.eval_imgs, list) or len(lvis_eval.eval_imgs) != expected:
        raise ValueError(
            'lvis_eval.eval_imgs does not hold cat_ids x area_rng x img_ids entries: '
            'run evaluate() first'
        )

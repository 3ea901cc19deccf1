"""Small COCO ground truths and detections built in memory for the evaluation tests."""

import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def build_coco(images, num_cats):
    """images: [dict(gts=[(xywh, cat, iscrowd)], dets=[(xywh, cat, score)])], cats 1..num_cats.

    Returns (gt COCO, results COCO) with image ids 1.. and annotation ids 1.. in list order.
    """
    gt = COCO()
    gt.dataset = dict(
        images=[dict(id=i + 1, width=100, height=100, file_name='') for i in range(len(images))],
        categories=[dict(id=c, name=f'c{c}') for c in range(1, num_cats + 1)],
        annotations=[
            dict(
                id=0,
                image_id=i + 1,
                category_id=cat,
                bbox=list(box),
                iscrowd=int(crowd),
                area=box[2] * box[3],
            )
            for i, image in enumerate(images)
            for box, cat, crowd in image['gts']
        ],
    )
    for n, ann in enumerate(gt.dataset['annotations']):
        ann['id'] = n + 1
    results = [
        dict(image_id=i + 1, category_id=cat, bbox=list(box), score=score)
        for i, image in enumerate(images)
        for box, cat, score in image['dets']
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(results)
    return gt, dt


def xyxy_annotation(ann_id, image_id, box, category_id, iscrowd=0, **fields):
    """A COCO ground-truth annotation of an xyxy box (its area the box's), with more fields."""
    x1, y1, x2, y2 = box
    return dict(
        id=ann_id,
        image_id=image_id,
        category_id=category_id,
        bbox=[x1, y1, x2 - x1, y2 - y1],
        area=(x2 - x1) * (y2 - y1),
        iscrowd=iscrowd,
        **fields,
    )


def evaluate(gt, dt, iou_thrs=None, max_dets=(1, 10, 100)):
    """COCOeval 'bbox' with evaluate() run (COCO's default IoU thresholds unless given)."""
    evaluation = COCOeval(gt, dt, 'bbox')
    if iou_thrs is not None:
        evaluation.params.iouThrs = np.asarray(iou_thrs, dtype=float)
    evaluation.params.maxDets = list(max_dets)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation.evaluate()
    return evaluation


def random_scene(rng, num_imgs, num_cats):
    """Ground truths (some crowd) with noisy detections around them, plus random detections.

    Scores have two decimals, so that equal scores occur.
    """
    images = []
    for _ in range(num_imgs):
        gts, dets = [], []
        for cat in range(1, num_cats + 1):
            for _ in range(rng.integers(0, 4)):
                w, h = rng.uniform(8, 40, size=2)
                box = (rng.uniform(0, 100 - w), rng.uniform(0, 100 - h), w, h)
                gts.append((box, cat, rng.random() < 0.15))
                for _ in range(rng.integers(0, 3)):
                    noisy = (
                        box[0] + rng.normal(0, 0.1 * w),
                        box[1] + rng.normal(0, 0.1 * h),
                        w * np.exp(rng.normal(0, 0.15)),
                        h * np.exp(rng.normal(0, 0.15)),
                    )
                    dets.append((noisy, cat, round(float(rng.uniform(0.3, 1.0)), 2)))
            for _ in range(rng.integers(0, 4)):
                w, h = rng.uniform(5, 40, size=2)
                box = (rng.uniform(0, 100 - w), rng.uniform(0, 100 - h), w, h)
                dets.append((box, cat, round(float(rng.uniform(0.0, 0.8)), 2)))
        order = rng.permutation(len(dets))
        images.append(dict(gts=gts, dets=[dets[i] for i in order]))
    return images


def class_view(images, cat):
    """The scene of one category as the oracle takes it: [(dets, gts)] per image."""
    return [
        (
            [(box, s) for box, c, s in image['dets'] if c == cat],
            [(box, crowd) for box, c, crowd in image['gts'] if c == cat],
        )
        for image in images
    ]

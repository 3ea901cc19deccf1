"""A two-image scene where LRP-Error's conventions decide: ties across images and a class with
only false positives.

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

import numpy as np
import torch
from pycocotools import mask as mask_utils

from .coco_scenes import xyxy_annotation

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


def gt_annotations():
    """The ground truth as COCO annotations, masks as compressed RLE."""
    annotations = []
    for img_id, gts in GTS.items():
        for box, label in gts:
            rle = mask_utils.encode(np.asfortranarray(pixels(box).astype(np.uint8)))
            segmentation = dict(size=rle['size'], counts=rle['counts'].decode())
            annotations.append(
                xyxy_annotation(
                    len(annotations) + 1, img_id, box, label + 1, segmentation=segmentation
                )
            )
    return annotations


def data_samples(dets=DETS):
    """The detections as the data samples a detector's test step gives."""
    return [
        dict(
            img_id=img_id,
            ori_shape=(SIZE, SIZE),
            pred_instances=dict(
                bboxes=torch.tensor([d[0] for d in image], dtype=torch.float32),
                labels=torch.tensor([d[1] for d in image]),
                scores=torch.tensor([d[2] for d in image], dtype=torch.float32),
                masks=torch.from_numpy(np.stack([pixels(d[0], d[3]) for d in image])),
            ),
        )
        for img_id, image in dets.items()
    ]

"""Time CocoMetric's evaluation against CocoLRPMetric's (COCO AP + oLRP) on generated data.

The data have COCO's size by default: 5000 images of 640 x 480, 80 classes, Poisson(7) ground
truths per image (1% crowd), 100 detections per image: 1 to 3 noisy copies of every ground truth
(90% with its class) and random boxes of random classes for the rest. Both metrics evaluate the
same processed results in the same run; the time of CocoLRPMetric's LRP part alone (matches read
from the COCO evaluation and oLRP of every class) is measured too.

    python tools/analysis_tools/benchmark_lrp.py [--images 5000] [--classes 80] [--seed 0] \
        [--repeats 1]
"""

import argparse
import contextlib
import io
import json
import os.path as osp
import tempfile
import time
from typing import List

import numpy as np
import torch
from mmengine.logging import MMLogger

from mmdet.evaluation.metrics import CocoMetric
from mmdet_alrp.evaluation import CocoLRPMetric

WIDTH, HEIGHT = 640, 480


def random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 4) xyxy boxes inside the image."""
    wh = rng.uniform(8, 300, size=(n, 2))
    xy = rng.uniform(0, 1, size=(n, 2)) * (np.array([WIDTH, HEIGHT]) - wh)
    return np.concatenate([xy, xy + wh], axis=1)


def generate(
    rng: np.random.Generator,
    num_images: int,
    num_classes: int,
    gts_per_image: float,
    dets_per_image: int,
):
    """COCO ground-truth dict and mmdet data samples with ``pred_instances``."""
    images, annotations, samples = [], [], []
    for img_id in range(1, num_images + 1):
        images.append(dict(id=img_id, width=WIDTH, height=HEIGHT, file_name=f'{img_id}.jpg'))
        num_gts = rng.poisson(gts_per_image)
        gt_boxes = random_boxes(rng, num_gts)
        gt_labels = rng.integers(0, num_classes, size=num_gts)
        for box, label in zip(gt_boxes, gt_labels):
            w, h = box[2:] - box[:2]
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=img_id,
                    category_id=int(label) + 1,
                    bbox=[float(box[0]), float(box[1]), float(w), float(h)],
                    area=float(w * h),
                    iscrowd=int(rng.random() < 0.01),
                )
            )
        copies = np.repeat(np.arange(num_gts), rng.integers(1, 4, size=num_gts))
        copies = copies[:dets_per_image]
        size = gt_boxes[copies, 2:] - gt_boxes[copies, :2]
        centre = (gt_boxes[copies, 2:] + gt_boxes[copies, :2]) / 2
        centre = centre + rng.normal(0, 0.1, size.shape) * size
        size = size * np.exp(rng.normal(0, 0.15, size.shape))
        noisy = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        labels = np.where(
            rng.random(copies.size) < 0.9,
            gt_labels[copies],
            rng.integers(0, num_classes, size=copies.size),
        )
        num_random = dets_per_image - copies.size
        boxes = np.concatenate([noisy, random_boxes(rng, num_random)])
        labels = np.concatenate([labels, rng.integers(0, num_classes, size=num_random)])
        scores = np.concatenate([rng.beta(5, 2, copies.size), rng.beta(2, 5, num_random)])
        samples.append(
            dict(
                img_id=img_id,
                ori_shape=(HEIGHT, WIDTH),
                pred_instances=dict(
                    bboxes=torch.from_numpy(boxes).float(),
                    scores=torch.from_numpy(scores).float(),
                    labels=torch.from_numpy(labels),
                ),
            )
        )
    categories = [dict(id=k + 1, name=f'class{k}') for k in range(num_classes)]
    return dict(images=images, annotations=annotations, categories=categories), samples


class Clock:
    """CPU seconds of this process (robust on a shared machine) and wall seconds of a block."""

    def __enter__(self) -> 'Clock':
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.cpu = time.process_time() - self._cpu
        self.wall = time.perf_counter() - self._wall

    @staticmethod
    def total(clocks: List['Clock']) -> 'Clock':
        """One clock of the summed times of ``clocks``."""
        total = Clock()
        total.cpu = sum(c.cpu for c in clocks)
        total.wall = sum(c.wall for c in clocks)
        return total


def timed_evaluation(metric, samples, classes):
    """Clock of ``metric.evaluate`` (COCO's prints silenced) and its results."""
    metric.dataset_meta = dict(classes=classes)
    metric.process({}, samples)
    with Clock() as clock, contextlib.redirect_stdout(io.StringIO()):
        results = metric.evaluate(size=len(samples))
    return clock, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=5000)
    parser.add_argument('--classes', type=int, default=80)
    parser.add_argument('--gts-per-image', type=float, default=7.0)
    parser.add_argument('--dets-per-image', type=int, default=100)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--repeats',
        type=int,
        default=1,
        help='evaluations of each metric, alternating; the fastest is shown',
    )
    args = parser.parse_args()
    MMLogger.get_instance('benchmark_lrp', log_level='WARNING')

    gt, samples = generate(
        np.random.default_rng(args.seed),
        args.images,
        args.classes,
        args.gts_per_image,
        args.dets_per_image,
    )
    classes = tuple(c['name'] for c in gt['categories'])
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        ann_file = osp.join(tmp, 'gt.json')
        with open(ann_file, 'w') as f:
            json.dump(gt, f)
        coco_metric = CocoMetric(ann_file=ann_file, outfile_prefix=osp.join(tmp, 'coco'))
        lrp_metric = CocoLRPMetric(ann_file=ann_file, outfile_prefix=osp.join(tmp, 'lrp'))
        lrp_part = []  # per evaluation: the clocks of oLRP of all classes in every area range
        class_olrp = lrp_metric._class_olrp

        def timed_class_olrp(evaluation, area):
            with Clock() as clock:
                out = class_olrp(evaluation, area)
            lrp_part[-1].append(clock)
            return out

        lrp_metric._class_olrp = timed_class_olrp
        coco_clocks, lrp_clocks = [], []
        for _ in range(args.repeats):
            clock, coco_results = timed_evaluation(coco_metric, samples, classes)
            coco_clocks.append(clock)
            lrp_part.append([])
            clock, lrp_results = timed_evaluation(lrp_metric, samples, classes)
            lrp_clocks.append(clock)

    if any(lrp_results[k] != v for k, v in coco_results.items()):
        raise RuntimeError('CocoLRPMetric and CocoMetric disagree on COCO AP')
    num_dets = sum(len(s['pred_instances']['scores']) for s in samples)
    print(
        f'data: {args.images} images, {args.classes} classes, {len(gt["annotations"])} ground '
        f'truths, {num_dets} detections (seed {args.seed}); fastest of {args.repeats} '
        'evaluation(s) of each metric'
    )
    lrp = {k.split('_', 1)[1]: v for k, v in lrp_results.items() if 'LRP' in k}
    print(
        f'bbox_mAP {coco_results["coco/bbox_mAP"]:.3f}, bbox_moLRP {lrp["moLRP"]:.3f} (loc '
        f'{lrp["moLRP_loc"]:.3f}, FP {lrp["moLRP_FP"]:.3f}, FN {lrp["moLRP_FN"]:.3f})'
    )
    coco_clock = min(coco_clocks, key=lambda c: c.cpu)
    rows = [
        ('CocoMetric.evaluate', coco_clock),
        ('CocoLRPMetric.evaluate', min(lrp_clocks, key=lambda c: c.cpu)),
        ('  of which oLRP (4 area ranges)', min(map(Clock.total, lrp_part), key=lambda c: c.cpu)),
    ]
    print(f'{"":32s}{"CPU s":>9s}{"x CocoMetric":>14s}{"wall s":>9s}{"x CocoMetric":>14s}')
    for name, clock in rows:
        print(
            f'{name:32s}{clock.cpu:9.2f}{clock.cpu / coco_clock.cpu:14.3f}'
            f'{clock.wall:9.2f}{clock.wall / coco_clock.wall:14.3f}'
        )


if __name__ == '__main__':
    main()

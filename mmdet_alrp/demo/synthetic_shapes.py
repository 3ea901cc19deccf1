"""A deterministic, built-in COCO-format detection and instance segmentation dataset of coloured
shapes.

Every image shows 1 to 6 shapes of five classes (:data:`CLASSES`) with random colours, sizes
(about 8 to 100 px), rotations and shading on a textured background (smooth noise, stripes,
gradients, clutter lines, per-image colour jitter, pixel noise). Shapes may be cut by the
image border (at most a quarter of a shape) and may partially overlap: a shape drawn later
never hides more than :data:`MAX_HIDDEN` of an earlier one.

Every annotation holds, for one shape:

- ``bbox``: the exact extent of the shape's pixels inside the image, including the pixels
  hidden by later shapes (the box of the whole shape, as a detector is asked to find it);
- ``segmentation``: the shape's visible pixels, exactly: the pixels it covers in the image less
  those that later shapes cover, as COCO compressed RLE (pycocotools; ``counts`` a string). A
  ring's hole and a shape cut in two by an occluder are exact in it;
- ``area``: the number of pixels of ``segmentation`` (COCO's convention: COCO's size ranges,
  small / medium / large, classify objects by it).

The visible masks of an image are disjoint and their union is the set of pixels that shapes
cover. A shape keeps at least ``1 - MAX_HIDDEN`` of its pixels visible, so none is hidden
entirely (an annotation of no visible pixel would be left out).

Layout written by :func:`generate_synthetic_shapes` under ``out_dir``::

    annotations/instances_train.json, annotations/instances_val.json
    train/000000.jpg ...,  val/000000.jpg ...
    manifest.json  (the generation parameters, written last)

Configs use ``metainfo=METAINFO`` (or ``dict(classes=CLASSES)``), ``data_root=out_dir``,
``ann_file='annotations/instances_train.json'`` and ``data_prefix=dict(img='train/')``; with
``LoadAnnotations(with_mask=True)`` the masks load as ``BitmapMasks``.
"""

import json
import math
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

CLASSES = ('disc', 'square', 'triangle', 'ring', 'cross')
METAINFO = dict(
    classes=CLASSES,
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (245, 130, 48), (145, 30, 180)],
)

MIN_DIAMETER = 11  # the smallest shape's box side is then about 8 px
MAX_DIAMETER = 100
MAX_HIDDEN = 0.4  # largest fraction of a shape that later shapes may cover
MIN_INSIDE = 0.75  # smallest fraction of a shape's area that must lie inside the image
MAX_OBJECTS = 6
_VERSION = 2  # 2: segmentation masks, area of the visible pixels
_SPLITS = ('train', 'val')
_TRIES = 30


def _shape_mask(
    kind: str,
    diameter: float,
    centre: Tuple[float, float],
    angle: float,
    grid: Tuple[np.ndarray, np.ndarray],
    ratio: float,
) -> Tuple[np.ndarray, float]:
    """The shape's pixels (pixel centres inside it) and its full area in pixels.

    ``diameter`` is the diameter of the shape's circumscribed circle; ``ratio`` (0..1) sets the
    ring's hole and the cross's arm width.
    """
    ys, xs = grid
    dx, dy = xs - centre[0], ys - centre[1]
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    radius = diameter / 2
    if kind in ('disc', 'ring'):
        dist2 = dx * dx + dy * dy
        mask = dist2 <= radius * radius
        inner = radius * (0.45 + 0.25 * ratio)
        if kind == 'disc':
            return mask, math.pi * radius * radius
        return mask & (dist2 >= inner * inner), math.pi * (radius * radius - inner * inner)
    if kind == 'square':
        half = radius / math.sqrt(2)
        return (np.abs(u) <= half) & (np.abs(v) <= half), 4 * half * half
    if kind == 'cross':
        half, arm = radius / math.sqrt(2), radius / math.sqrt(2) * (0.25 + 0.2 * ratio)
        au, av = np.abs(u), np.abs(v)
        mask = ((au <= half) & (av <= arm)) | ((au <= arm) & (av <= half))
        return mask, 8 * half * arm - 4 * arm * arm
    # equilateral triangle: inside the three edges, each at distance radius / 2 from the centre
    mask = np.ones_like(u, dtype=bool)
    for k in range(3):
        theta = angle + 2 * math.pi * k / 3
        mask &= math.cos(theta) * dx + math.sin(theta) * dy <= radius / 2
    return mask, 3 * math.sqrt(3) / 4 * radius * radius


def _background(
    rng: np.random.Generator, size: int, grid: Tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """A float32 (size, size, 3) RGB background in 0..255."""
    ys, xs = grid
    cells = int(rng.integers(3, 9))
    noise = rng.random((cells, cells, 3), dtype=np.float32)
    image = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    image = rng.uniform(40, 200, 3).astype(np.float32) + (image - 0.5) * rng.uniform(40, 140)
    if rng.random() < 0.6:  # stripes
        theta, period = rng.uniform(0, math.pi), rng.uniform(5, 40)
        phase = (xs * math.cos(theta) + ys * math.sin(theta)) * (2 * math.pi / period)
        stripes = np.sin(phase + rng.uniform(0, 2 * math.pi)) * rng.uniform(8, 40)
        image += stripes[..., None] * rng.uniform(0.3, 1.0, 3).astype(np.float32)
    if rng.random() < 0.5:  # linear gradient
        theta = rng.uniform(0, 2 * math.pi)
        ramp = ((xs * math.cos(theta) + ys * math.sin(theta)) / size - 0.5) * rng.uniform(20, 80)
        image += ramp[..., None]
    for _ in range(int(rng.integers(0, 4))):  # clutter lines
        p1, p2 = rng.integers(0, size, 2), rng.integers(0, size, 2)
        colour = rng.uniform(0, 255, 3).tolist()
        cv2.line(
            image,
            (int(p1[0]), int(p1[1])),
            (int(p2[0]), int(p2[1])),
            colour,
            int(rng.integers(1, 3)),
        )
    return image


def _instance_annotations(labels: List[int], masks: List[np.ndarray]) -> List[dict]:
    """The COCO annotations of shapes painted in this order, each over the earlier ones.

    Args:
        labels (List[int]): the class index (0-based) of every shape.
        masks (List[np.ndarray]): bool (H, W), the pixels of every shape inside the image.

    Returns:
        List[dict]: ``category_id`` (1-based), ``bbox`` (``[x, y, w, h]``, the whole shape's
        extent), ``segmentation`` (RLE of the visible pixels) and ``area`` (their count), in
        painting order; a shape with no visible pixel is left out.
    """
    if not masks:
        return []
    annotations = []
    covered = np.zeros_like(masks[0])
    for label, mask in zip(reversed(labels), reversed(masks)):
        visible = mask & ~covered
        covered |= mask
        pixels = int(visible.sum())
        if pixels == 0:
            continue
        rows, cols = np.nonzero(mask)
        x1, y1 = int(cols.min()), int(rows.min())
        rle = mask_utils.encode(np.asfortranarray(visible, dtype=np.uint8))
        rle = dict(size=[int(n) for n in rle['size']], counts=rle['counts'].decode('ascii'))
        annotations.append(
            dict(
                category_id=label + 1,
                bbox=[x1, y1, int(cols.max()) + 1 - x1, int(rows.max()) + 1 - y1],
                segmentation=rle,
                area=float(pixels),
            )
        )
    return annotations[::-1]


def _render_image(rng: np.random.Generator, size: int) -> Tuple[np.ndarray, List[dict]]:
    """An RGB uint8 image and its annotations (see :func:`_instance_annotations`)."""
    grid = np.mgrid[0:size, 0:size].astype(np.float32) + np.float32(0.5)
    grid = (grid[0], grid[1])
    image = _background(rng, size, grid)
    max_diameter = min(MAX_DIAMETER, 0.7 * size)
    masks, visible, labels = [], [], []
    for _ in range(int(rng.integers(1, MAX_OBJECTS + 1))):
        for _ in range(_TRIES):
            label = int(rng.integers(len(CLASSES)))
            diameter = math.exp(rng.uniform(math.log(MIN_DIAMETER), math.log(max_diameter)))
            centre = (rng.uniform(0, size), rng.uniform(0, size))
            mask, area = _shape_mask(
                CLASSES[label], diameter, centre, rng.uniform(0, 2 * math.pi), grid, rng.random()
            )
            pixels = int(mask.sum())
            if pixels < MIN_INSIDE * area:
                continue
            if all(
                (vis & ~mask).sum() >= (1 - MAX_HIDDEN) * full.sum()
                for vis, full in zip(visible, masks)
            ):
                break
        else:
            continue
        visible = [vis & ~mask for vis in visible] + [mask]
        masks.append(mask)
        labels.append(label)
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        background = image[mask].mean(axis=0)
        if np.abs(colour - background).sum() < 120:  # keep the shape visible
            colour = np.where(background > 127, colour * 0.35, 255 - (255 - colour) * 0.35)
        theta = rng.uniform(0, 2 * math.pi)
        shade = (
            1
            + rng.uniform(0, 0.4)
            * (
                (grid[1][mask] - centre[0]) * math.cos(theta)
                + (grid[0][mask] - centre[1]) * math.sin(theta)
            )
            / diameter
        )
        image[mask] = colour * shade[:, None]
    image *= rng.uniform(0.85, 1.15, 3).astype(np.float32)  # colour jitter
    image += rng.normal(0, rng.uniform(2, 10), image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), _instance_annotations(labels, masks)


def _write_split(root: str, split: str, num_images: int, size: int, seed: int, quality: int) -> str:
    """Renders one split; returns the path of its annotation file."""
    os.makedirs(osp.join(root, split), exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        rng = np.random.default_rng([seed, _SPLITS.index(split), index])
        image, objects = _render_image(rng, size)
        file_name = f'{index:06d}.jpg'
        ok, data = cv2.imencode('.jpg', image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok, 'cv2 could not encode a JPEG image'
        with open(osp.join(root, split, file_name), 'wb') as f:
            f.write(data.tobytes())
        images.append(dict(id=index + 1, file_name=file_name, width=size, height=size))
        for obj in objects:
            annotations.append(dict(id=len(annotations) + 1, image_id=index + 1, iscrowd=0, **obj))
    categories = [
        dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(CLASSES)
    ]
    ann_file = osp.join(root, 'annotations', f'instances_{split}.json')
    os.makedirs(osp.dirname(ann_file), exist_ok=True)
    with open(ann_file, 'w') as f:
        json.dump(
            dict(images=images, annotations=annotations, categories=categories), f, sort_keys=True
        )
    return ann_file


def generate_synthetic_shapes(
    out_dir: str,
    num_train: int = 1000,
    num_val: int = 200,
    image_size: int = 160,
    seed: int = 0,
    jpeg_quality: int = 92,
    force: bool = False,
) -> Dict[str, str]:
    """Writes the dataset under ``out_dir`` unless it is already there with these parameters.

    The same parameters give byte-identical files; image ``i`` of a split depends only on
    ``seed``, the split and ``i``.

    Returns:
        dict: ``data_root``, ``train_ann_file``, ``val_ann_file``, ``train_img_dir``,
        ``val_img_dir`` and ``manifest`` (absolute paths).
    """
    if num_train < 0 or num_val < 0:
        raise ValueError(f'image counts must be >= 0, got {num_train} and {num_val}')
    if image_size < 2 * MIN_DIAMETER:
        raise ValueError(f'image_size must be at least {2 * MIN_DIAMETER}, got {image_size}')
    root = osp.abspath(out_dir)
    counts = dict(train=num_train, val=num_val)
    paths = dict(data_root=root, manifest=osp.join(root, 'manifest.json'))
    for split in _SPLITS:
        paths[f'{split}_ann_file'] = osp.join(root, 'annotations', f'instances_{split}.json')
        paths[f'{split}_img_dir'] = osp.join(root, split)
    manifest = dict(
        generator='mmdet_alrp.demo.synthetic_shapes',
        version=_VERSION,
        classes=list(CLASSES),
        num_train=num_train,
        num_val=num_val,
        image_size=image_size,
        seed=seed,
        jpeg_quality=jpeg_quality,
    )
    if not force and _is_complete(paths, manifest, counts):
        return paths
    if osp.exists(paths['manifest']):
        os.remove(paths['manifest'])
    for split in _SPLITS:
        _write_split(root, split, counts[split], image_size, seed, jpeg_quality)
    with open(paths['manifest'], 'w') as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    return paths


def _is_complete(paths: Dict[str, str], manifest: dict, counts: Dict[str, int]) -> bool:
    """Whether the manifest matches and every file it stands for exists."""
    try:
        with open(paths['manifest']) as f:
            if json.load(f) != manifest:
                return False
    except (OSError, ValueError):
        return False
    return all(
        osp.isfile(paths[f'{split}_ann_file'])
        and all(
            osp.isfile(osp.join(paths[f'{split}_img_dir'], f'{i:06d}.jpg'))
            for i in range(counts[split])
        )
        for split in _SPLITS
    )

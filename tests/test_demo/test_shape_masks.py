"""The instance masks of the synthetic shapes: exact visible pixels, against hand-computed
cases and against the pixels the generator paints."""

import hashlib
import json
import math

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mmdet_alrp.demo import generate_synthetic_shapes, synthetic_shapes
from mmdet_alrp.demo.synthetic_shapes import MAX_HIDDEN, _instance_annotations, _shape_mask

#: sha256 of the raw images and the (category_id, bbox) lists of images 0-3 of both splits, for
#: (seed, image size): the detection data, which masks must leave as they are (pinned numpy and
#: opencv). The detection demo's results depend on them.
DETECTION_DATA_SHA256 = {
    (0, 160): '092c26d9b015bbf606e8bf31a99475145d2c974c4acc4d3464ef8394a68f1ceb',
    (3, 160): '7be1704b446d4b2573ba2947a8561b994f2ac0463b4f1e4d06666c7547e5c328',
    (11, 64): '7b667d575ff6f48e0b6d822b69dcc22425390d18fe6fcc113edce9b1f03aed24',
}


def grid(size):
    """Pixel centres, (rows, columns), as the generator takes them."""
    centres = np.mgrid[0:size, 0:size].astype(np.float32) + np.float32(0.5)
    return centres[0], centres[1]


def decode(annotation):
    return mask_utils.decode(annotation['segmentation']).astype(bool)


def square_and_disc():
    """A square of side 20 px over columns and rows 20..39 and a disc of radius 8 centred at
    the pixel corner (40, 40), built by hand from pixel centres (integer arithmetic, doubled
    coordinates); and the same two from the generator's _shape_mask."""
    doubled = 2 * np.arange(64) + 1  # 2 * pixel centre
    square = np.zeros((64, 64), bool)
    square[20:40, 20:40] = True
    disc = (doubled[:, None] - 80) ** 2 + (doubled[None, :] - 80) ** 2 <= 16**2
    drawn_square, _ = _shape_mask('square', 20 * math.sqrt(2), (30.0, 30.0), 0.0, grid(64), 0.0)
    drawn_disc, _ = _shape_mask('disc', 16.0, (40.0, 40.0), 0.0, grid(64), 0.0)
    return square, disc, drawn_square, drawn_disc


def test_square_occluded_by_a_disc():
    square, disc, drawn_square, drawn_disc = square_and_disc()
    # Pixel centres of one quadrant of the disc, offsets 0.5..7.5 from its centre, per column:
    # 8, 8, 8, 7, 7, 6, 5, 3 rows with a^2 + b^2 <= 64.
    assert disc.sum() == 4 * 52 and (square & disc).sum() == 52
    np.testing.assert_array_equal(drawn_square, square)
    np.testing.assert_array_equal(drawn_disc, disc)

    square_ann, disc_ann = _instance_annotations([1, 0], [drawn_square, drawn_disc])
    assert square_ann['category_id'] == 2 and disc_ann['category_id'] == 1
    assert square_ann['area'] == 400 - 52 and disc_ann['area'] == 208
    np.testing.assert_array_equal(decode(square_ann), square & ~disc)
    np.testing.assert_array_equal(decode(disc_ann), disc)
    # Boxes: the whole shape, hidden pixels included.
    assert square_ann['bbox'] == [20, 20, 20, 20] and disc_ann['bbox'] == [32, 32, 16, 16]
    assert square_ann['segmentation']['size'] == [64, 64]
    assert isinstance(square_ann['segmentation']['counts'], str)

    disc_ann, square_ann = _instance_annotations([0, 1], [drawn_disc, drawn_square])
    assert disc_ann['area'] == 208 - 52 and square_ann['area'] == 400
    np.testing.assert_array_equal(decode(disc_ann), disc & ~square)
    assert disc_ann['bbox'] == [32, 32, 16, 16]


def test_ring_hole_and_a_shape_cut_in_two():
    ring, _ = _shape_mask('ring', 40.0, (32.0, 32.0), 0.0, grid(64), 0.0)
    bar = np.zeros((64, 64), bool)
    bar[28:36, :] = True  # a band across the middle cuts the ring in an upper and a lower part
    ring_ann, bar_ann = _instance_annotations([3, 1], [ring, bar])
    visible = decode(ring_ann)
    np.testing.assert_array_equal(visible, ring & ~bar)
    assert not visible[26:38, 26:38].any()  # the hole (inner radius 9 px) and the band
    assert visible[13, 32] and visible[50, 32]  # the ring above and below the band
    count, _ = cv2.connectedComponents(visible.astype(np.uint8))
    assert count == 3  # background and two pieces
    assert ring_ann['bbox'] == [12, 12, 40, 40] and bar_ann['bbox'] == [0, 28, 64, 8]
    assert ring_ann['area'] == (ring & ~bar).sum()


def test_fully_hidden_shape_is_left_out():
    _, disc, drawn_square, drawn_disc = square_and_disc()
    small, _ = _shape_mask('square', 4 * math.sqrt(2), (40.0, 40.0), 0.0, grid(64), 0.0)
    assert small.sum() == 16 and not (small & ~disc).any()
    annotations = _instance_annotations([2, 0, 1], [small, drawn_disc, drawn_square])
    assert [a['category_id'] for a in annotations] == [1, 2]
    assert _instance_annotations([], []) == []


def render(seed, split, index, size, background=None, monkeypatch=None):
    """The image and annotations of one generated image; with ``background``, every background
    pixel is that value before the shapes are painted (the random stream is unchanged)."""
    rng = np.random.default_rng([seed, split, index])
    if background is None:
        return synthetic_shapes._render_image(rng, size)
    real = synthetic_shapes._background

    def constant(rng, size, grid):
        return np.full_like(real(rng, size, grid), background)

    with monkeypatch.context() as patch:
        patch.setattr(synthetic_shapes, '_background', constant)
        return synthetic_shapes._render_image(rng, size)


@pytest.mark.parametrize('seed,size', [(0, 160), (5, 96)])
def test_masks_are_the_painted_pixels(seed, size, monkeypatch):
    """On a background far above 255 and then far below 0, background pixels end at 255 and 0
    and every painted pixel at the same value in both: the painted pixels are those equal in
    the two images. The masks are disjoint and cover them exactly, and each is its shape's
    pixels (as the generator passes them on, recorded) less those of the shapes painted later."""
    drawn = []
    real = synthetic_shapes._instance_annotations

    def record(labels, masks):
        drawn.append((list(labels), [m.copy() for m in masks]))
        return real(labels, masks)

    monkeypatch.setattr(synthetic_shapes, '_instance_annotations', record)
    shapes = occluded = 0
    for split in (0, 1):
        for index in range(6):
            image, annotations = render(seed, split, index, size)
            high, high_annotations = render(seed, split, index, size, 1e6, monkeypatch)
            low, low_annotations = render(seed, split, index, size, -1e6, monkeypatch)
            assert high_annotations == annotations and low_annotations == annotations
            painted = (high == low).all(axis=-1)
            assert (high[~painted] == 255).all() and (low[~painted] == 0).all()

            labels, full = drawn[-3]  # the first of the three renders
            assert len(full) == len(annotations)  # no shape is hidden entirely
            np.testing.assert_array_equal(np.any(full, axis=0), painted)
            masks = np.stack([decode(a) for a in annotations])
            np.testing.assert_array_equal(masks.any(axis=0), painted)
            assert masks.sum() == painted.sum()  # disjoint
            for i, (annotation, mask) in enumerate(zip(annotations, masks)):
                later = np.any(full[i + 1 :], axis=0) if i + 1 < len(full) else False
                np.testing.assert_array_equal(mask, full[i] & ~later)
                assert annotation['category_id'] == labels[i] + 1
                assert annotation['area'] == mask.sum() >= (1 - MAX_HIDDEN) * full[i].sum()
                assert annotation['segmentation']['size'] == [size, size]
                rows, cols = np.nonzero(full[i])
                x, y = cols.min(), rows.min()
                assert annotation['bbox'] == [x, y, cols.max() + 1 - x, rows.max() + 1 - y]
                occluded += bool((full[i] & ~mask).any())
            shapes += len(annotations)
    assert shapes >= 20 and occluded >= 2


@pytest.mark.parametrize('seed,size', sorted(DETECTION_DATA_SHA256))
def test_detection_images_and_boxes_are_unchanged(seed, size):
    digest = hashlib.sha256()
    for split in (0, 1):
        for index in range(4):
            image, annotations = render(seed, split, index, size)
            digest.update(image.tobytes())
            boxes = [[a['category_id'], a['bbox']] for a in annotations]
            digest.update(json.dumps(boxes).encode())
    assert digest.hexdigest() == DETECTION_DATA_SHA256[seed, size]


def test_written_annotations_hold_the_masks(tmp_path):
    paths = generate_synthetic_shapes(str(tmp_path), 4, 2, 96, seed=2)
    for split_index, split in enumerate(('train', 'val')):
        with open(paths[f'{split}_ann_file']) as f:
            coco = json.load(f)
        for image in coco['images']:
            written = [a for a in coco['annotations'] if a['image_id'] == image['id']]
            _, expected = render(2, split_index, image['id'] - 1, 96)
            assert [(a['bbox'], a['segmentation'], a['area']) for a in written] == [
                (a['bbox'], a['segmentation'], a['area']) for a in expected
            ]
            for annotation in written:
                assert mask_utils.area(annotation['segmentation']) == annotation['area']

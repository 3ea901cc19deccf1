import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from pycocotools.coco import COCO

from mmdet.datasets import CocoDataset
from mmdet.utils import register_all_modules
from mmdet_alrp.demo import CLASSES, METAINFO, generate_synthetic_shapes
from mmdet_alrp.demo.synthetic_shapes import MAX_OBJECTS, _shape_mask


def read_tree(root):
    """{relative path: bytes} of every file under ``root``."""
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                files[osp.relpath(path, root)] = f.read()
    return files


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    return generate_synthetic_shapes(
        str(tmp_path_factory.mktemp('shapes')), num_train=60, num_val=10, image_size=160, seed=3
    )


def test_same_seed_gives_identical_bytes(tmp_path):
    def make(name, seed):
        return read_tree(
            generate_synthetic_shapes(str(tmp_path / name), 6, 3, 64, seed=seed)['data_root']
        )

    first, second, other = make('a', 1), make('b', 1), make('c', 2)
    assert len(first) == 6 + 3 + 2 + 1  # images, two annotation files, the manifest
    assert first == second
    assert first['train/000000.jpg'] != other['train/000000.jpg']


def test_images_do_not_depend_on_the_split_sizes(tmp_path):
    small = read_tree(generate_synthetic_shapes(str(tmp_path / 'a'), 2, 1, 64)['data_root'])
    large = read_tree(generate_synthetic_shapes(str(tmp_path / 'b'), 5, 3, 64)['data_root'])
    for name in ('train/000000.jpg', 'train/000001.jpg', 'val/000000.jpg'):
        assert small[name] == large[name]


def test_existing_dataset_is_not_rewritten(tmp_path):
    paths = generate_synthetic_shapes(str(tmp_path), 3, 2, 64)
    image = osp.join(paths['train_img_dir'], '000000.jpg')
    with open(image, 'wb') as f:  # a change that only a regeneration undoes
        f.write(b'mark')
    assert generate_synthetic_shapes(str(tmp_path), 3, 2, 64) == paths
    with open(image, 'rb') as f:
        assert f.read() == b'mark'
    generate_synthetic_shapes(str(tmp_path), 3, 2, 64, seed=5)  # other parameters: rewritten
    with open(image, 'rb') as f:
        assert f.read()[:2] == b'\xff\xd8'  # a JPEG again
    with open(paths['manifest']) as f:
        assert json.load(f)['seed'] == 5
    os.remove(osp.join(paths['val_img_dir'], '000001.jpg'))  # incomplete: rewritten
    generate_synthetic_shapes(str(tmp_path), 3, 2, 64, seed=5)
    assert osp.isfile(osp.join(paths['val_img_dir'], '000001.jpg'))


def test_coco_annotations(dataset):
    coco = COCO(dataset['train_ann_file'])
    assert [coco.cats[i]['name'] for i in sorted(coco.cats)] == list(CLASSES)
    assert len(CLASSES) >= 4 and len(METAINFO['palette']) == len(CLASSES)
    assert len(coco.imgs) == 60
    sizes, labels = [], set()
    for img_id, img in coco.imgs.items():
        anns = coco.imgToAnns[img_id]
        assert 1 <= len(anns) <= MAX_OBJECTS
        assert (img['width'], img['height']) == (160, 160)
        assert osp.isfile(osp.join(dataset['train_img_dir'], img['file_name']))
        for ann in anns:
            x, y, w, h = ann['bbox']
            assert x >= 0 and y >= 0 and w > 0 and h > 0
            assert x + w <= img['width'] and y + h <= img['height']
            assert 0 < ann['area'] <= w * h and ann['iscrowd'] == 0
            sizes.append(max(w, h))
            labels.add(ann['category_id'])
    assert labels == set(coco.cats)
    assert min(sizes) <= 10 and max(sizes) >= 80
    assert len(COCO(dataset['val_ann_file']).imgs) == 10


def test_mmdet_coco_dataset_with_train_pipeline(dataset):
    register_all_modules()
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(128, 128), keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs'),
    ]
    coco = CocoDataset(
        data_root=dataset['data_root'],
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        metainfo=METAINFO,
        pipeline=pipeline,
    )
    assert len(coco) == 60 and coco.metainfo['classes'] == CLASSES
    for index in range(3):
        item = coco[index]
        assert tuple(item['inputs'].shape) == (3, 128, 128)
        boxes = item['data_samples'].gt_instances.bboxes.tensor.numpy()
        labels = item['data_samples'].gt_instances.labels.numpy()
        assert len(boxes) >= 1 and len(boxes) == len(labels)
        assert (boxes >= 0).all() and (boxes <= 128).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        assert ((0 <= labels) & (labels < len(CLASSES))).all()


@pytest.mark.parametrize('kind', CLASSES)
def test_shape_area_and_extent(kind):
    """The analytic areas (behind the inside and occlusion limits) match the pixel counts, and
    a shape stays within its circumscribed circle."""
    grid = np.mgrid[0:100, 0:100].astype(np.float32) + np.float32(0.5)
    for angle, ratio in [(0.0, 0.0), (0.7, 0.5), (2.0, 1.0)]:
        mask, area = _shape_mask(kind, 60.0, (50.0, 50.0), angle, (grid[0], grid[1]), ratio)
        assert mask.sum() == pytest.approx(area, rel=0.1)  # thin arms: pixel quantisation
        rows, cols = np.nonzero(mask)
        assert ((rows + 0.5 - 50) ** 2 + (cols + 0.5 - 50) ** 2).max() <= 30**2
        assert rows.max() - rows.min() + 1 >= 0.65 * 60


def test_the_plugin_does_not_import_the_demo():
    """``import mmdet_alrp`` (what configs' custom_imports do) leaves the demo code out."""
    code = (
        'import sys, mmdet_alrp; '
        'print(sorted(m for m in sys.modules if m.startswith("mmdet_alrp.demo")))'
    )
    run = subprocess.run(
        [sys.executable, '-c', code],
        capture_output=True,
        text=True,
        cwd=osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ['[]']

"""configs/demo/_base_/shapes_instance.py: the shapes with masks through mmdet's loaders and
CocoLRPMetric (bbox and segm)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import InstanceData
from pycocotools import mask as mask_utils

from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmdet_alrp.demo import CLASSES, generate_synthetic_shapes

CONFIG = Path(__file__).parents[2] / 'configs' / 'demo' / '_base_' / 'shapes_instance.py'


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes'))
    return generate_synthetic_shapes(root, num_train=6, num_val=5, image_size=160, seed=4)


def config(data):
    cfg = Config.fromfile(str(CONFIG))
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=3, num_workers=0, persistent_workers=False)
        loader.dataset.data_root = data['data_root']
    cfg.val_evaluator.ann_file = data['val_ann_file']
    return cfg


def gt_masks(ann_file):
    """{image id: bool (N, H, W) masks decoded from the json, in annotation order}."""
    with open(ann_file) as f:
        coco = json.load(f)
    masks = {}
    for ann in coco['annotations']:
        masks.setdefault(ann['image_id'], []).append(mask_utils.decode(ann['segmentation']))
    return {key: np.stack(value).astype(bool) for key, value in masks.items()}


def test_config_settings():
    cfg = Config.fromfile(str(CONFIG))
    assert cfg.metainfo['classes'] == CLASSES
    assert cfg.val_evaluator.type == 'CocoLRPMetric'
    assert cfg.val_evaluator.metric == ['bbox', 'segm']
    for pipeline in (cfg.train_pipeline, cfg.test_pipeline):
        load = next(t for t in pipeline if t['type'] == 'LoadAnnotations')
        assert load['with_bbox'] and load['with_mask']


def test_train_loader_gives_masks_with_their_boxes(data, mmdet_scope_quiet_logs):
    loader = Runner.build_dataloader(config(data).train_dataloader, seed=0)
    seen = 0
    for batch in loader:
        for inputs, sample in zip(batch['inputs'], batch['data_samples']):
            gt = sample.gt_instances
            assert isinstance(gt.masks, BitmapMasks)
            height, width = sample.img_shape
            assert tuple(inputs.shape[1:]) == (height, width)
            assert (gt.masks.height, gt.masks.width) == (height, width)
            assert len(gt.masks) == len(gt.bboxes) == len(gt.labels) >= 1
            # A mask lies inside its box (boxes: whole shapes, masks: their visible pixels),
            # up to the one pixel that resizing may add.
            for box, mask in zip(gt.bboxes.tensor.numpy(), gt.masks.masks):
                rows, cols = np.nonzero(mask)
                if len(rows):
                    assert cols.min() >= box[0] - 1 and cols.max() + 1 <= box[2] + 1
                    assert rows.min() >= box[1] - 1 and rows.max() + 1 <= box[3] + 1
            seen += 1
    assert seen == 6


def test_val_loader_gives_the_exact_masks(data, mmdet_scope_quiet_logs):
    loader = Runner.build_dataloader(config(data).val_dataloader, seed=0)
    expected = gt_masks(data['val_ann_file'])
    images = 0
    for batch in loader:
        for sample in batch['data_samples']:
            masks = sample.gt_instances.masks.masks.astype(bool)  # 160 px: scale 1
            np.testing.assert_array_equal(masks, expected[sample.img_id])
            images += 1
    assert images == 5


def evaluate(data, predict_mask):
    """CocoLRPMetric of the config on the val set, predictions = the ground truth's boxes and
    labels (score 1) with ``predict_mask(gt_instances)`` as masks."""
    cfg = config(data)
    loader = Runner.build_dataloader(cfg.val_dataloader, seed=0)
    evaluator = Runner.build_evaluator(None, cfg.val_evaluator)
    evaluator.dataset_meta = loader.dataset.metainfo
    for batch in loader:
        samples = []
        for sample in batch['data_samples']:
            gt = sample.gt_instances
            result = DetDataSample(metainfo=sample.metainfo)
            result.pred_instances = InstanceData(
                bboxes=gt.bboxes.tensor,
                labels=gt.labels,
                scores=torch.ones(len(gt.labels)),
                masks=torch.from_numpy(predict_mask(gt)),
            )
            samples.append(result)
        evaluator.process(samples, batch)
    return evaluator.evaluate(len(loader.dataset))


def test_perfect_masks_score_one_and_box_masks_less(data, mmdet_scope_quiet_logs):
    exact = evaluate(data, lambda gt: gt.masks.masks.astype(bool))
    assert exact['coco/bbox_mAP'] == 1.0 and exact['coco/segm_mAP'] == 1.0
    assert exact['coco/bbox_moLRP'] == 0.0 and exact['coco/segm_moLRP'] == 0.0

    def filled_boxes(gt):
        masks = np.zeros_like(gt.masks.masks, dtype=bool)
        for mask, (x1, y1, x2, y2) in zip(masks, gt.bboxes.tensor.numpy().astype(int)):
            mask[y1:y2, x1:x2] = True
        return masks

    boxes = evaluate(data, filled_boxes)
    assert boxes['coco/bbox_mAP'] == 1.0
    assert boxes['coco/segm_mAP'] < 0.5 and 0.0 < boxes['coco/segm_moLRP'] < 1.0

"""CocoLRPMetric end to end on a hand-designed case.

Classes a, b, c (category ids 1, 2, 3); two 100 x 100 images.
Image 1, class a: ground truths g1 = [0, 0, 10, 10], g2 = [20, 20, 30, 30] and a crowd
[50, 50, 70, 70]; detections (xyxy) 0.9: g1 exactly (IoU 1), 0.8: [20, 20, 30, 25.8] (IoU 0.58
with g2), 0.7: [55, 55, 65, 65] inside the crowd (ignored), 0.6: [80, 80, 85, 85] (FP).
Image 2: one ground truth of class b, no detection of it; one detection of class c, which has no
ground truth.

Class a: LRP at 0.9 = (0 + 0 + 1) / 2 = 0.5; at 0.8 = (0.42 / 0.5 + 0 + 0) / 2 = 0.42; at 0.6 =
(0.84 + 1 + 0) / 3 = 0.613 -> oLRP 0.42 at 0.8, loc 0.21, FP 0, FN 0. Class b: oLRP 1, FN 1.
Class c: excluded. moLRP = 0.71, moLRP_loc = 0.21, moLRP_FP = 0, moLRP_FN = 0.5. Every ground
truth is small (area < 32^2): moLRP_s = 0.71, and moLRP_m = moLRP_l = -1 (no class to average).
COCO AP at IoU 0.5: 1 for a, 0 for b, none for c -> mAP_50 = 0.5.
"""

import json
import logging
import math

import pytest
import torch
from mmengine.logging import MMLogger
from pycocotools.cocoeval import COCOeval

from mmdet.evaluation.metrics import coco_metric as coco_metric_module
from mmdet.registry import METRICS
from mmdet_alrp.evaluation import CocoLRPMetric

from ..coco_scenes import xyxy_annotation

CLASSES = ('a', 'b', 'c')
GTS = {  # image id -> [(xyxy, label, iscrowd)]
    1: [([0, 0, 10, 10], 0, 0), ([20, 20, 30, 30], 0, 0), ([50, 50, 70, 70], 0, 1)],
    2: [([10, 10, 30, 30], 1, 0)],
}
DETS = {  # image id -> [(xyxy, label, score)]
    1: [
        ([0, 0, 10, 10], 0, 0.9),
        ([20, 20, 30, 25.8], 0, 0.8),
        ([55, 55, 65, 65], 0, 0.7),
        ([80, 80, 85, 85], 0, 0.6),
    ],
    2: [([40, 40, 60, 60], 2, 0.5)],
}


def write_ann_file(path):
    annotations = []
    for img_id, gts in GTS.items():
        for box, label, crowd in gts:
            annotations.append(xyxy_annotation(len(annotations) + 1, img_id, box, label + 1, crowd))
    path.write_text(
        json.dumps(
            dict(
                images=[dict(id=i, width=100, height=100, file_name=f'{i}.jpg') for i in GTS],
                categories=[dict(id=k + 1, name=name) for k, name in enumerate(CLASSES)],
                annotations=annotations,
            )
        )
    )
    return str(path)


def data_samples(with_instances=False, detections=DETS):
    samples = []
    for img_id in GTS:
        dets = detections.get(img_id, [])
        sample = dict(
            img_id=img_id,
            ori_shape=(100, 100),
            pred_instances=dict(
                bboxes=torch.tensor([d[0] for d in dets], dtype=torch.float32).reshape(-1, 4),
                labels=torch.tensor([d[1] for d in dets], dtype=torch.int64),
                scores=torch.tensor([d[2] for d in dets], dtype=torch.float32),
            ),
        )
        if with_instances:
            sample['instances'] = [
                dict(bbox=box, bbox_label=label, ignore_flag=crowd)
                for box, label, crowd in GTS[img_id]
            ]
        samples.append(sample)
    return samples


def run(metric, samples):
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    return metric.evaluate(size=len(samples))


@pytest.mark.parametrize('with_ann_file', [True, False])
def test_coco_ap_and_olrp_on_a_hand_designed_case(tmp_path, with_ann_file):
    ann_file = write_ann_file(tmp_path / 'gt.json') if with_ann_file else None
    metric = CocoLRPMetric(
        ann_file=ann_file, classwise=True, outfile_prefix=str(tmp_path / 'out' / 'res')
    )
    results = run(metric, data_samples(with_instances=not with_ann_file))

    assert results['coco/bbox_mAP_50'] == 0.5
    assert 0 < results['coco/bbox_mAP'] < 0.5
    assert results['coco/bbox_moLRP'] == 0.71
    assert results['coco/bbox_moLRP_loc'] == 0.21
    assert results['coco/bbox_moLRP_FP'] == 0.0
    assert results['coco/bbox_moLRP_FN'] == 0.5
    assert (results['coco/a_oLRP'], results['coco/b_oLRP']) == (0.42, 1.0)
    assert math.isnan(results['coco/c_oLRP'])
    sizes = [results[f'coco/bbox_moLRP_{s}'] for s in 'sml']
    assert sizes == [0.71, -1.0, -1.0]
    assert 'coco/bbox_moLRP_loc_s' not in results  # lrp_size_details is off

    saved = json.loads((tmp_path / 'out' / 'res.olrp_thresholds.json').read_text())
    assert saved['iou_thr'] == 0.5 and saved['max_dets'] == 100 and saved['ties'] == 'position'
    a, b, c = saved['classes']
    assert (a['label'], a['name'], a['num_gts']) == (0, 'a', 2)
    assert a['threshold'] == pytest.approx(0.8, abs=1e-6)
    assert a['oLRP'] == pytest.approx(0.42, abs=1e-6)
    assert a['oLRP_loc'] == pytest.approx(0.21, abs=1e-6)
    assert (a['oLRP_FP'], a['oLRP_FN']) == (0.0, 0.0)
    assert b == dict(
        label=1,
        name='b',
        category_id=b['category_id'],
        threshold=None,
        oLRP=1.0,
        oLRP_loc=None,
        oLRP_FP=None,
        oLRP_FN=1.0,
        num_gts=1,
    )
    assert c['num_gts'] == 0 and c['oLRP'] is None and c['threshold'] is None


def test_no_detection_at_all_gives_all_false_negatives(tmp_path):
    metric = CocoLRPMetric(
        ann_file=write_ann_file(tmp_path / 'gt.json'), thresholds_file=str(tmp_path / 'thr.json')
    )
    results = run(metric, data_samples(detections={}))
    assert 'coco/bbox_mAP' not in results  # CocoMetric reports nothing for empty results
    assert (results['coco/bbox_moLRP'], results['coco/bbox_moLRP_FN']) == (1.0, 1.0)
    # no true positive anywhere: the loc and FP means are over no class, LRP-Error's -1
    assert (results['coco/bbox_moLRP_loc'], results['coco/bbox_moLRP_FP']) == (-1.0, -1.0)
    assert [results[f'coco/bbox_moLRP_{s}'] for s in 'sml'] == [1.0, -1.0, -1.0]
    saved = json.loads((tmp_path / 'thr.json').read_text())
    assert [c['num_gts'] for c in saved['classes']] == [2, 1, 0]
    assert [c['oLRP'] for c in saved['classes']] == [1.0, 1.0, None]


def test_multiprocess_coco_evaluation_gives_the_same_olrp(tmp_path):
    metric = METRICS.build(
        dict(
            type='CocoLRPMetric',
            ann_file=write_ann_file(tmp_path / 'gt.json'),
            use_mp_eval=True,
            outfile_prefix=str(tmp_path / 'res'),
        )
    )
    results = run(metric, data_samples())
    assert results['coco/bbox_mAP_50'] == 0.5
    assert (results['coco/bbox_moLRP'], results['coco/bbox_moLRP_loc']) == (0.71, 0.21)
    assert coco_metric_module.COCOeval is COCOeval  # the evaluator names are restored


def test_thresholds_default_to_the_log_directory(tmp_path):
    log_file = tmp_path / 'work_dir' / '20240101_000000' / '20240101_000000.log'
    log_file.parent.mkdir(parents=True)
    MMLogger.get_instance('test_coco_lrp_metric', log_file=str(log_file))
    metric = CocoLRPMetric(ann_file=write_ann_file(tmp_path / 'gt.json'))
    run(metric, data_samples())
    saved = json.loads((log_file.parent / 'olrp_thresholds.json').read_text())
    assert saved['classes'][0]['threshold'] == pytest.approx(0.8, abs=1e-6)


def test_without_any_place_for_the_thresholds_a_warning_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    logger = MMLogger.get_instance('test_coco_lrp_metric_no_file')  # current, no log file
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        results = run(CocoLRPMetric(ann_file=write_ann_file(tmp_path / 'gt.json')), data_samples())
    finally:
        logger.removeHandler(handler)
    assert results['coco/bbox_moLRP'] == 0.71
    assert any('oLRP thresholds not written' in r.getMessage() for r in records)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['gt.json']


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(iou_thrs=[0.75]), 'needs 0.5 among iou_thrs'),
        (dict(proposal_nums=(1, 10)), r'needs max\(proposal_nums\) >= 100'),
    ],
)
def test_settings_without_lrp_matching_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CocoLRPMetric(**kwargs)
    CocoLRPMetric(metric='proposal', **kwargs)  # LRP is only computed for 'bbox' and 'segm'


def warnings_of(name, function):
    """``function()`` and the warnings it logs, with a new current MMLogger."""
    logger = MMLogger.get_instance(name)
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        return function(), [r.getMessage() for r in records]
    finally:
        logger.removeHandler(handler)


def test_unwritable_thresholds_file_warns_after_every_metric(tmp_path):
    (tmp_path / 'a_file').write_text('')
    path = tmp_path / 'a_file' / 'thr.json'  # a file cannot hold a folder: not writable
    metric = CocoLRPMetric(ann_file=write_ann_file(tmp_path / 'gt.json'), thresholds_file=str(path))
    results, warnings = warnings_of('test_unwritable', lambda: run(metric, data_samples()))
    assert results['coco/bbox_mAP_50'] == 0.5 and results['coco/bbox_moLRP'] == 0.71
    assert any(f'oLRP thresholds not written to {path}' in w for w in warnings)


@pytest.mark.parametrize(
    'key, index, value',
    [
        ('scores', 2, float('nan')),
        ('scores', 0, float('inf')),
        ('bboxes', 1, float('nan')),
        ('bboxes', 3, float('-inf')),
    ],
)
def test_non_finite_predictions_are_refused_before_any_evaluation(tmp_path, key, index, value):
    """Refused as the predictions come in (process), not after COCO AP was computed."""
    metric = CocoLRPMetric(ann_file=write_ann_file(tmp_path / 'gt.json'))
    metric.dataset_meta = dict(classes=CLASSES)
    samples = data_samples()
    samples[0]['pred_instances'][key].view(-1)[index] = value
    with pytest.raises(ValueError, match=f'NaN or Inf in the predicted {key} of image 1'):
        metric.process({}, samples)
    assert metric.results == []


def test_results_of_no_image_are_defined(tmp_path):
    metric = CocoLRPMetric(
        ann_file=write_ann_file(tmp_path / 'gt.json'), thresholds_file=str(tmp_path / 'thr.json')
    )
    metric.dataset_meta = dict(classes=CLASSES)
    results, warnings = warnings_of('test_no_image', lambda: metric.evaluate(size=0))
    assert results == {
        **{
            f'coco/bbox_{item}': 0.0
            for item in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
        },
        'coco/bbox_moLRP': 1.0,
        'coco/bbox_moLRP_FN': 1.0,
        'coco/bbox_moLRP_loc': -1.0,
        'coco/bbox_moLRP_FP': -1.0,
        'coco/bbox_moLRP_s': 1.0,
        'coco/bbox_moLRP_m': 1.0,
        'coco/bbox_moLRP_l': 1.0,
    }
    assert any('results of no image' in w for w in warnings)
    assert not (tmp_path / 'thr.json').exists()

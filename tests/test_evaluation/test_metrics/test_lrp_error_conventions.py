"""CocoLRPMetric on the scene of ``lrp_error_scene`` (its docstring gives the hand-computed
values): ties across images, a class with only false positives, boxes and masks, by object
size, both tie rules."""

import json

import pytest

from mmdet_alrp.evaluation import CocoLRPMetric

from ..lrp_error_scene import CLASSES, SIZE, data_samples, gt_annotations


def write_ann_file(path):
    path.write_text(
        json.dumps(
            dict(
                images=[dict(id=i, width=SIZE, height=SIZE, file_name=f'{i}.jpg') for i in (1, 2)],
                categories=[dict(id=k + 1, name=name) for k, name in enumerate(CLASSES)],
                annotations=gt_annotations(),
            )
        )
    )
    return str(path)


def evaluate(tmp_path, **kwargs):
    """Results of CocoLRPMetric on the scene and the thresholds json it writes."""
    metric = CocoLRPMetric(
        ann_file=write_ann_file(tmp_path / 'gt.json'),
        thresholds_file=str(tmp_path / 'thr.json'),
        **kwargs,
    )
    metric.dataset_meta = dict(classes=CLASSES)
    samples = data_samples()
    metric.process({}, samples)
    results = metric.evaluate(size=len(samples))
    return results, json.loads((tmp_path / 'thr.json').read_text())


def means(results, iou_type, suffix=''):
    return [
        results[f'coco/{iou_type}_{name}{suffix}']
        for name in ('moLRP', 'moLRP_loc', 'moLRP_FP', 'moLRP_FN')
    ]


def test_ties_across_images_and_a_class_with_only_false_positives(tmp_path):
    results, saved = evaluate(tmp_path, metric=['bbox', 'segm'], classwise=True)
    assert means(results, 'bbox') == [0.633, 0.1, 0.25, 0.333]
    assert means(results, 'segm') == [0.833, 0.25, 0.25, 0.333]
    assert [results[f'coco/{c}_oLRP'] for c in CLASSES] == [0.4, 0.5, 1.0]
    assert [results[f'coco/{c}_segm_oLRP'] for c in CLASSES] == [1.0, 0.5, 1.0]

    assert saved['ties'] == 'position'
    a, b, c = saved['classes']
    assert a['oLRP'] == pytest.approx(0.4) and a['oLRP_loc'] == pytest.approx(0.2)
    assert (a['oLRP_FP'], a['oLRP_FN']) == (0.0, 0.0)
    assert a['threshold'] == pytest.approx(0.8)  # the score at the position cut
    assert (b['oLRP'], b['oLRP_loc'], b['oLRP_FP'], b['oLRP_FN']) == (0.5, 0.0, 0.5, 0.0)
    assert b['threshold'] == pytest.approx(0.6)
    # only false positives: oLRP 1, FN 1; loc, FP and threshold undefined (null)
    assert (c['name'], c['oLRP'], c['oLRP_FN'], c['num_gts']) == ('c', 1.0, 1.0, 1)
    assert c['threshold'] is c['oLRP_loc'] is c['oLRP_FP'] is None
    mask_a = saved['segm_classes'][0]
    assert (mask_a['oLRP'], mask_a['oLRP_loc'], mask_a['oLRP_FP']) == (1.0, 0.5, 0.0)
    assert mask_a['threshold'] == pytest.approx(0.8)


def test_the_threshold_rule_does_not_cut_between_equal_scores(tmp_path):
    results, saved = evaluate(tmp_path, lrp_ties='threshold')
    assert means(results, 'bbox') == [0.733, 0.1, 0.5, 0.333]
    assert results['coco/bbox_moLRP_s'] == 0.85
    assert saved['ties'] == 'threshold'
    assert saved['classes'][0]['oLRP_FP'] == 0.5
    assert 'segm_classes' not in saved


def test_olrp_by_object_size(tmp_path):
    results, _ = evaluate(tmp_path, metric=['bbox', 'segm'])
    assert [results[f'coco/bbox_moLRP_{s}'] for s in 'sml'] == [0.7, 0.0, -1.0]
    assert [results[f'coco/segm_moLRP_{s}'] for s in 'sml'] == [1.0, 0.0, -1.0]
    assert 'coco/bbox_moLRP_loc_s' not in results

    detailed, _ = evaluate(tmp_path, lrp_size_details=True)
    assert means(detailed, 'bbox', '_s') == [0.7, 0.2, 0.0, 0.5]
    assert means(detailed, 'bbox', '_m') == [0.0, 0.0, 0.0, 0.0]
    assert means(detailed, 'bbox', '_l') == [-1.0] * 4


def test_an_unknown_tie_rule_is_refused():
    with pytest.raises(ValueError, match='lrp_ties must be one of'):
        CocoLRPMetric(lrp_ties='stable')

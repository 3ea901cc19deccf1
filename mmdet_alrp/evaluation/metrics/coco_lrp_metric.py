"""COCO AP and optimal LRP (Oksuz et al., ECCV 2018) from one and the same COCO evaluation."""

import os.path as osp
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
from mmengine.fileio import dump
from mmengine.logging import MMLogger
from terminaltables import AsciiTable

from mmdet.datasets.api_wrappers import COCO, COCOeval
from mmdet.evaluation.metrics import CocoMetric
from mmdet.evaluation.metrics import coco_metric as coco_metric_module
from mmdet.registry import METRICS

from ..functional import ClassOLRP, coco_class_matches, optimal_lrp

#: IoU threshold tau of LRP, and detections per image (and class) that count, as in the paper.
LRP_IOU_THR = 0.5
LRP_MAX_DETS = 100


@METRICS.register_module()
class CocoLRPMetric(CocoMetric):
    """CocoMetric that also reports the optimal LRP of the 'bbox' detections.

    For every class, LRP of the detections scoring >= s, matched as COCO's AP matches them at
    IoU 0.5 (area range 'all', 100 detections per image and class; crowd ground truth and the
    detections matched to it ignored), is
    ``(sum_TP (1 - IoU) / 0.5 + N_FP + N_FN) / (N_TP + N_FP + N_FN)``; oLRP is its minimum over
    the thresholds s: the scores of the detections that count, the highest one among equal
    minima. The matching is the one of CocoMetric's own evaluation (its ``iou_thrs`` must include
    0.5 and ``max(proposal_nums)`` be >= 100), so LRP costs one pass over the sorted detections
    of each class.

    Added to CocoMetric's results (``coco/`` prefix by default):

    - ``bbox_moLRP``: mean oLRP over the classes with ground truth;
    - ``bbox_moLRP_loc``, ``bbox_moLRP_FP``, ``bbox_moLRP_FN``: means over those classes of
      the components at each class's optimal threshold: mean (1 - IoU) of the true positives,
      FP / (TP + FP) and FN / number of ground truths;
    - with ``classwise=True``, ``<class>_oLRP`` for every class and a logged table.

    Conventions: a class without ground truth is left out of every mean (NaN in the table). A
    class with ground truth but no detection has oLRP 1 and FN 1, while its localisation and FP
    components (and its threshold) are undefined, NaN, and left out of those means. With no
    detection at all, moLRP = moLRP_FN = 1 and moLRP_loc = moLRP_FP = NaN.

    The optimal threshold of every class, with its components, goes to a json file (NaN written
    as null), whose path is logged: ``thresholds_file`` if given, else
    ``<outfile_prefix>.olrp_thresholds.json`` if ``outfile_prefix`` is given, else
    ``olrp_thresholds.json`` in the runner's log directory (``<work_dir>/<timestamp>/``, the
    folder of the current MMLogger's log file). Without any of them nothing is written. Every
    evaluation (every validation during training) rewrites the file, last, once every metric is
    computed; a path that cannot be written gives a warning, not an error.

    The predicted scores and boxes of every image are checked as they come (:meth:`process`):
    NaN or Inf raises a ``ValueError`` naming the image before any evaluation. Results of no
    image at all (an empty dataset) give, with a warning, AP 0 and moLRP = moLRP_FN = 1.

    Args:
        thresholds_file (str, optional): path of the thresholds json. Defaults to None.
        **kwargs: the arguments of :class:`mmdet.evaluation.CocoMetric`.
    """

    def __init__(self, thresholds_file: Optional[str] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.thresholds_file = thresholds_file
        if 'bbox' in self.metrics:
            if not np.isclose(np.atleast_1d(self.iou_thrs), LRP_IOU_THR).any():
                raise ValueError(
                    f'CocoLRPMetric needs {LRP_IOU_THR} among iou_thrs, got {self.iou_thrs}'
                )
            if max(self.proposal_nums) < LRP_MAX_DETS:
                raise ValueError(
                    f'CocoLRPMetric needs max(proposal_nums) >= {LRP_MAX_DETS}, '
                    f'got {self.proposal_nums}'
                )

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """CocoMetric's processing of a batch, after the predictions are checked.

        Raises:
            ValueError: NaN or Inf in the predicted scores or boxes of an image (named).
        """
        for sample in data_samples:
            pred = sample['pred_instances']
            for key in ('scores', 'bboxes'):
                if not bool(torch.isfinite(torch.as_tensor(pred[key])).all()):
                    raise ValueError(
                        f'NaN or Inf in the predicted {key} of image '
                        f'{sample.get("img_id")} ({sample.get("img_path")}): '
                        'the model is broken, nothing can be evaluated'
                    )
        super().process(data_batch, data_samples)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """CocoMetric's results plus the LRP ones (see the class docstring).

        Args:
            results (list): the processed results of every image, as CocoMetric takes them.

        Returns:
            Dict[str, float]: the metrics by name.
        """
        if not results:
            return self._results_of_no_image()
        evaluations: List[COCOeval] = []
        with _keep_coco_evaluations(evaluations):
            eval_results = super().compute_metrics(results)
        if 'bbox' not in self.metrics or self.format_only:
            return eval_results
        bbox_evaluation = next(
            (e for e in evaluations if e.params.iouType == 'bbox' and e.params.useCats), None
        )
        if bbox_evaluation is None:  # CocoMetric stops before evaluating when nothing is detected
            bbox_evaluation = self._evaluate_without_detections()
        per_class = self._class_olrp(bbox_evaluation)
        eval_results.update(self._lrp_results(per_class))
        self._dump_thresholds(per_class)
        return eval_results

    def _results_of_no_image(self) -> Dict[str, float]:
        """The defined results of an evaluation without any image: AP and AR 0, moLRP and
        moLRP_FN 1, moLRP_loc and moLRP_FP NaN (as with no detection)."""
        MMLogger.get_current_instance().warning(
            'CocoLRPMetric got the results of no image (an empty dataset?): AP 0 and oLRP 1'
        )
        if self.format_only:
            return {}
        results: Dict[str, float] = {}
        for metric in self.metrics:
            if metric == 'proposal_fast':
                results.update({f'AR@{num}': 0.0 for num in self.proposal_nums})
            elif metric == 'proposal':
                results.update(
                    dict.fromkeys(
                        self.metric_items
                        or ('AR@100', 'AR@300', 'AR@1000', 'AR_s@1000', 'AR_m@1000', 'AR_l@1000'),
                        0.0,
                    )
                )
            else:
                results.update(
                    {
                        f'{metric}_{item}': 0.0
                        for item in self.metric_items
                        or ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
                    }
                )
        if 'bbox' in self.metrics:
            results.update(
                bbox_moLRP=1.0,
                bbox_moLRP_loc=float('nan'),
                bbox_moLRP_FP=float('nan'),
                bbox_moLRP_FN=1.0,
            )
        return results

    def _class_olrp(self, evaluation: COCOeval) -> List[ClassOLRP]:
        """oLRP of every class, in the order of ``self.cat_ids`` (the classes' order)."""
        matches = coco_class_matches(evaluation, LRP_IOU_THR, LRP_MAX_DETS)
        by_cat = {
            int(cat_id): optimal_lrp(m.scores, m.is_tp, m.ious, m.num_gts, LRP_IOU_THR)
            for cat_id, m in zip(evaluation.params.catIds, matches)
        }
        return [by_cat[int(cat_id)] for cat_id in self.cat_ids]

    def _evaluate_without_detections(self) -> COCOeval:
        """The matching of an empty detection set: it gives the ground-truth counts."""
        no_detections = COCO()
        no_detections.dataset = dict(
            images=self._coco_api.dataset['images'],
            categories=self._coco_api.dataset['categories'],
            annotations=[],
        )
        no_detections.createIndex()
        evaluation = COCOeval(self._coco_api, no_detections, 'bbox')
        evaluation.params.catIds = self.cat_ids
        evaluation.params.imgIds = self.img_ids
        evaluation.params.iouThrs = np.array([LRP_IOU_THR])
        evaluation.params.maxDets = [LRP_MAX_DETS]
        evaluation.evaluate()
        return evaluation

    def _lrp_results(self, per_class: List[ClassOLRP]) -> Dict[str, float]:
        """The moLRP means and, with ``classwise``, every class's oLRP (and a logged table)."""
        logger = MMLogger.get_current_instance()
        # every field of a class without ground truth is NaN, so _mean leaves the class out
        means = dict(
            moLRP=_mean([r.olrp for r in per_class]),
            moLRP_loc=_mean([r.loc for r in per_class]),
            moLRP_FP=_mean([r.fp for r in per_class]),
            moLRP_FN=_mean([r.fn for r in per_class]),
        )
        results = {f'bbox_{name}': round(value, 3) for name, value in means.items()}
        if self.classwise:
            rows = [['category', 'oLRP', 'oLRP_loc', 'oLRP_FP', 'oLRP_FN', 'threshold', 'num_gts']]
            for name, r in zip(self._class_names(), per_class):
                results[f'{name}_oLRP'] = round(r.olrp, 3)
                values = (r.olrp, r.loc, r.fp, r.fn, r.threshold)
                rows.append([name] + [f'{round(v, 3)}' for v in values] + [str(r.num_gts)])
            logger.info('\n' + AsciiTable(rows).table)
        logger.info('bbox_oLRP_copypaste: ' + ' '.join(f'{v:.3f}' for v in means.values()))
        return results

    def _dump_thresholds(self, per_class: List[ClassOLRP]) -> None:
        """Write every class's optimal threshold and components to the thresholds json."""
        logger = MMLogger.get_current_instance()
        path = self._thresholds_path(logger)
        if path is None:
            logger.warning('oLRP thresholds not written: give thresholds_file or outfile_prefix')
            return
        classes = [
            dict(
                label=label,
                name=name,
                category_id=int(cat_id),
                threshold=_json(r.threshold),
                oLRP=_json(r.olrp),
                oLRP_loc=_json(r.loc),
                oLRP_FP=_json(r.fp),
                oLRP_FN=_json(r.fn),
                num_gts=r.num_gts,
            )
            for label, (name, cat_id, r) in enumerate(
                zip(self._class_names(), self.cat_ids, per_class)
            )
        ]
        try:
            dump(
                dict(iou_thr=LRP_IOU_THR, max_dets=LRP_MAX_DETS, classes=classes),
                path,
                file_format='json',
                indent=2,
            )
        except OSError as error:
            logger.warning(f'oLRP thresholds not written to {path}: {error}')
            return
        logger.info(f'oLRP optimal thresholds of every class written to {path}')

    def _class_names(self) -> List[str]:
        """Category names in the order of ``self.cat_ids`` (the labels' order)."""
        return [cat['name'] for cat in self._coco_api.loadCats(self.cat_ids)]

    def _thresholds_path(self, logger: MMLogger) -> Optional[str]:
        if self.thresholds_file is not None:
            return self.thresholds_file
        if self.outfile_prefix is not None:
            return f'{self.outfile_prefix}.olrp_thresholds.json'
        if logger.log_file is not None:
            return osp.join(osp.dirname(logger.log_file), 'olrp_thresholds.json')
        return None


@contextmanager
def _keep_coco_evaluations(kept: List[COCOeval]) -> Iterator[None]:
    """Within the block, every COCOeval (or COCOevalMP) that CocoMetric builds is also put in
    ``kept``.

    ``CocoMetric.compute_metrics`` builds its evaluator from the names ``COCOeval`` and
    ``COCOevalMP`` of its module and drops it when done; these names are wrapped for the block
    and restored after it. The wrapper is a function that returns an instance of the original
    class itself (a subclass would not pickle for COCOevalMP's worker processes).
    """
    names = ('COCOeval', 'COCOevalMP')
    originals = {name: getattr(coco_metric_module, name) for name in names}

    def keeping(cls):
        def build(*args, **kwargs):
            evaluation = cls(*args, **kwargs)
            kept.append(evaluation)
            return evaluation

        return build

    try:
        for name, cls in originals.items():
            setattr(coco_metric_module, name, keeping(cls))
        yield
    finally:
        for name, cls in originals.items():
            setattr(coco_metric_module, name, cls)


def _mean(values: List[float]) -> float:
    """Mean of the values that are not NaN; NaN if there is none."""
    defined = [v for v in values if not np.isnan(v)]
    return float(np.mean(defined)) if defined else float('nan')


def _json(value: float) -> Optional[float]:
    """A float for json: NaN becomes None (null)."""
    return None if np.isnan(value) else float(value)

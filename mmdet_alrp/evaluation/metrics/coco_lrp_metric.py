"""COCO AP and optimal LRP (Oksuz et al., ECCV 2018) from one and the same COCO evaluation."""

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import MMLogger
from terminaltables import AsciiTable

from mmdet.datasets.api_wrappers import COCO, COCOeval
from mmdet.evaluation.metrics import CocoMetric
from mmdet.evaluation.metrics import coco_metric as coco_metric_module
from mmdet.registry import METRICS

from ..functional import ClassOLRP, coco_class_matches, optimal_lrp
from ..functional.lrp import TIES
from .lrp_report import (
    COMPONENTS,
    class_entries,
    keep_evaluations,
    mean_over_classes,
    thresholds_path,
    write_thresholds,
)

#: IoU threshold tau of LRP, and detections per image (and class) that count, as in the paper.
LRP_IOU_THR = 0.5
LRP_MAX_DETS = 100
#: The evaluations LRP is computed for.
LRP_IOU_TYPES = ('bbox', 'segm')
#: Suffix of the size results -> COCO's area range label.
SIZES = {'s': 'small', 'm': 'medium', 'l': 'large'}


@METRICS.register_module()
class CocoLRPMetric(CocoMetric):
    """CocoMetric that also reports the optimal LRP of the 'bbox' and 'segm' detections, with
    the numbers of the authors' LRP-Error toolkit (github kemaloksuz/LRP-Error).

    For every class, LRP of the first detections in descending score, matched as COCO's AP
    matches them at IoU 0.5 (100 detections per image and class; crowd ground truth and the
    detections matched to it ignored), is
    ``(sum_TP (1 - IoU) / 0.5 + N_FP + N_FN) / (N_TP + N_FP + N_FN)``; oLRP is its minimum. The
    IoU is the box IoU for 'bbox' and the mask IoU for 'segm'. The matching is the one of
    CocoMetric's own evaluation (its ``iou_thrs`` must include 0.5 and ``max(proposal_nums)`` be
    >= 100), so LRP costs one pass over the sorted detections of each class.

    Conventions, those of LRP-Error's ``COCOeval.accumulate`` and ``summarize``:

    - Ties: the detections of a class are taken image after image (images by id), each image's
      by descending score, then sorted stably by score, so equal scores keep that order; LRP is
      evaluated after every detection (``lrp_ties='position'``). ``lrp_ties='threshold'``
      evaluates it only after the last of equal scores: the LRP that deploying the optimal
      threshold actually gives (all detections scoring >= it kept).
    - The first minimum wins; the optimal threshold is the score of the detection there.
    - A class with detections but no true positive has oLRP 1 and FN 1; its localisation and FP
      components and its threshold are undefined (NaN) and it is left out of those means.
    - A class without ground truth (in the area range) is left out of every mean. A mean over
      no class is -1 (LRP-Error's value), e.g. ``moLRP_loc`` when nothing is detected.

    Added to CocoMetric's results (``coco/`` prefix by default), for each of 'bbox' and 'segm'
    in ``metric`` (``<t>`` below):

    - ``<t>_moLRP``: mean oLRP over the classes with ground truth (LRP-Error's ``stats[12]``);
    - ``<t>_moLRP_loc``, ``<t>_moLRP_FP``, ``<t>_moLRP_FN``: means of the components at each
      class's optimum: mean (1 - IoU) of the true positives, FP / (TP + FP) and
      FN / number of ground truths (``stats[13:16]``);
    - ``<t>_moLRP_s``, ``<t>_moLRP_m``, ``<t>_moLRP_l``: moLRP over the small, medium and large
      objects (COCO's area ranges: ground truth outside the range and unmatched detections
      outside it ignored, ``stats[16:19]``);
    - with ``lrp_size_details=True``, the components by size as well: ``<t>_moLRP_loc_s``,
      ``<t>_moLRP_FP_s``, ``<t>_moLRP_FN_s`` and the same for ``_m`` and ``_l``;
    - with ``classwise=True``, ``<class>_oLRP`` (bbox) and ``<class>_segm_oLRP`` for every
      class, and a logged table.

    The means are rounded to 3 decimals as CocoMetric rounds AP.

    The optimal threshold of every class, with its components, goes to a json file (NaN written
    as null): ``classes`` for 'bbox', ``segm_classes`` for 'segm'. Its path is logged:
    ``thresholds_file`` if given, else ``<outfile_prefix>.olrp_thresholds.json`` if
    ``outfile_prefix`` is given, else ``olrp_thresholds.json`` in the runner's log directory
    (``<work_dir>/<timestamp>/``, the folder of the current MMLogger's log file). Without any of
    them nothing is written. Every evaluation (every validation during training) rewrites the
    file, last, once every metric is computed; a path that cannot be written gives a warning,
    not an error.

    The predicted scores and boxes of every image are checked as they come (:meth:`process`):
    NaN or Inf raises a ``ValueError`` naming the image before any evaluation. With no
    detection at all, moLRP = moLRP_FN = 1 for every area range with ground truth. Results of no
    image at all (an empty dataset) give, with a warning, AP 0 and moLRP = moLRP_FN = 1.

    Args:
        thresholds_file (str, optional): path of the thresholds json. Defaults to None.
        lrp_ties (str): 'position' (LRP-Error's) or 'threshold'. Defaults to 'position'.
        lrp_size_details (bool): report the components by object size too. Defaults to False.
        **kwargs: the arguments of :class:`mmdet.evaluation.CocoMetric`.
    """

    def __init__(
        self,
        thresholds_file: Optional[str] = None,
        lrp_ties: str = 'position',
        lrp_size_details: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if lrp_ties not in TIES:
            raise ValueError(f'lrp_ties must be one of {TIES}, got {lrp_ties!r}')
        self.thresholds_file = thresholds_file
        self.lrp_ties = lrp_ties
        self.lrp_size_details = lrp_size_details
        if self._lrp_types():
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
        with keep_evaluations(coco_metric_module, ('COCOeval', 'COCOevalMP'), evaluations):
            eval_results = super().compute_metrics(results)
        if not self._lrp_types() or self.format_only:
            return eval_results
        by_type = {}
        for iou_type in self._lrp_types():
            evaluation = next(
                (e for e in evaluations if e.params.iouType == iou_type and e.params.useCats),
                None,
            )
            if evaluation is None:  # CocoMetric stops before evaluating when nothing is detected
                evaluation = self._evaluate_without_detections()
            by_area = {
                area: self._class_olrp(evaluation, area) for area in ('all', *SIZES.values())
            }
            eval_results.update(self._lrp_results(iou_type, by_area))
            by_type[iou_type] = by_area['all']
        self._dump_thresholds(by_type)
        return eval_results

    def _lrp_types(self) -> List[str]:
        """The evaluated iou types that LRP is computed for, in ``metric``'s order."""
        return [metric for metric in self.metrics if metric in LRP_IOU_TYPES]

    def _results_of_no_image(self) -> Dict[str, float]:
        """The defined results of an evaluation without any image: AP and AR 0, moLRP and
        moLRP_FN 1 (by size too), moLRP_loc and moLRP_FP -1 (as with no detection)."""
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
        no_detection = dict(olrp=1.0, loc=-1.0, fp=-1.0, fn=1.0)
        for iou_type in self._lrp_types():
            for key, name in COMPONENTS.items():
                results[f'{iou_type}_{name}'] = no_detection[key]
                for suffix in SIZES:
                    if key == 'olrp' or self.lrp_size_details:
                        results[f'{iou_type}_{name}_{suffix}'] = no_detection[key]
        return results

    def _class_olrp(self, evaluation: COCOeval, area: str) -> List[ClassOLRP]:
        """oLRP of every class in an area range, in the order of ``self.cat_ids``."""
        matches = coco_class_matches(evaluation, LRP_IOU_THR, LRP_MAX_DETS, area)
        by_cat = {
            int(cat_id): optimal_lrp(
                m.scores, m.is_tp, m.ious, m.num_gts, LRP_IOU_THR, m.is_ignored, self.lrp_ties
            )
            for cat_id, m in zip(evaluation.params.catIds, matches)
        }
        return [by_cat[int(cat_id)] for cat_id in self.cat_ids]

    def _evaluate_without_detections(self) -> COCOeval:
        """The matching of an empty detection set: it gives the ground-truth counts (the same
        for boxes and masks: they depend on the annotations' area and crowd flag only)."""
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

    def _lrp_results(self, iou_type: str, by_area: Dict[str, List[ClassOLRP]]) -> Dict[str, float]:
        """The moLRP means (overall and by size) and, with ``classwise``, every class's oLRP
        (and a logged table)."""
        logger = MMLogger.get_current_instance()
        means = {
            f'{iou_type}_{name}': mean_over_classes([getattr(r, key) for r in by_area['all']])
            for key, name in COMPONENTS.items()
        }
        for suffix, area in SIZES.items():
            for key, name in COMPONENTS.items():
                if key == 'olrp' or self.lrp_size_details:
                    means[f'{iou_type}_{name}_{suffix}'] = mean_over_classes(
                        [getattr(r, key) for r in by_area[area]]
                    )
        results = {name: round(value, 3) for name, value in means.items()}
        if self.classwise:
            class_key = '{}_oLRP' if iou_type == 'bbox' else '{}_segm_oLRP'
            rows = [
                ['category', 'oLRP', 'oLRP_loc', 'oLRP_FP', 'oLRP_FN', 'threshold', 'num_gts']
                + [f'oLRP_{suffix}' for suffix in SIZES]
            ]
            per_class = zip(self._class_names(), *(by_area[a] for a in ('all', *SIZES.values())))
            for name, r, *by_size in per_class:
                results[class_key.format(name)] = round(r.olrp, 3)
                values = (r.olrp, r.loc, r.fp, r.fn, r.threshold)
                rows.append(
                    [name]
                    + [f'{round(v, 3)}' for v in values]
                    + [str(r.num_gts)]
                    + [f'{round(s.olrp, 3)}' for s in by_size]
                )
            logger.info(f'{iou_type} oLRP per class\n' + AsciiTable(rows).table)
        logger.info(f'{iou_type}_oLRP_copypaste: ' + ' '.join(f'{v:.3f}' for v in means.values()))
        return results

    def _dump_thresholds(self, by_type: Dict[str, List[ClassOLRP]]) -> None:
        """Write every class's optimal threshold and components to the thresholds json."""
        logger = MMLogger.get_current_instance()
        names = self._class_names()
        content = dict(iou_thr=LRP_IOU_THR, max_dets=LRP_MAX_DETS, ties=self.lrp_ties)
        for iou_type, per_class in by_type.items():
            key = 'classes' if iou_type == 'bbox' else f'{iou_type}_classes'
            content[key] = class_entries(names, self.cat_ids, per_class)
        path = thresholds_path(self.thresholds_file, self.outfile_prefix, logger)
        write_thresholds(path, content, logger)

    def _class_names(self) -> List[str]:
        """Category names in the order of ``self.cat_ids`` (the labels' order)."""
        return [cat['name'] for cat in self._coco_api.loadCats(self.cat_ids)]

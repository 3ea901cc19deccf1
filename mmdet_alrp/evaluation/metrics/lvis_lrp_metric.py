"""LVIS AP and optimal LRP from one and the same LVIS evaluation, as the authors' LRP-Error
toolkit defines oLRP on LVIS."""

from typing import Dict, List, Optional

from mmengine.logging import MMLogger

from mmdet.evaluation.metrics import LVISMetric
from mmdet.evaluation.metrics import lvis_metric as lvis_metric_module
from mmdet.registry import METRICS

from ..functional import ClassOLRP, lvis_class_matches, optimal_lrp
from ..functional.lrp import TIES
from .lrp_report import (
    COMPONENTS,
    class_entries,
    keep_evaluations,
    mean_over_classes,
    thresholds_path,
    write_thresholds,
)

#: IoU threshold tau of LRP.
LRP_IOU_THR = 0.5
#: LVIS's category frequencies: rare, common, frequent (the suffixes of the results by group).
FREQUENCIES = ('r', 'c', 'f')


@METRICS.register_module()
class LVISLRPMetric(LVISMetric):
    """LVISMetric that also reports the optimal LRP of the 'bbox' and 'segm' detections, with
    the numbers of the LVIS variant of the authors' LRP-Error toolkit.

    oLRP of every category is that of :class:`CocoLRPMetric` (same conventions: ties broken by
    image order and taken at every position by default, ``lrp_ties='threshold'`` for the cut
    after the last of equal scores; a class without true positive has oLRP 1 and undefined
    localisation, FP and threshold; a mean over no class is -1), on LVIS's own matching: IoU
    0.5, the 300 highest-scoring detections of every image, detections of categories that an
    image neither contains nor marks absent not evaluated, unmatched detections of categories
    not exhaustively annotated in an image ignored.

    Added to LVISMetric's results (``lvis/`` prefix by default), for each of 'bbox' and 'segm'
    in ``metric`` (``<t>`` below): ``<t>_moLRP``, ``<t>_moLRP_loc``, ``<t>_moLRP_FP``,
    ``<t>_moLRP_FN`` (means over the categories with ground truth, LRP-Error's "oLRP", "oLRP
    LOC", "oLRP FP", "oLRP FN") and ``<t>_moLRP_r``, ``<t>_moLRP_c``, ``<t>_moLRP_f``, moLRP over
    the rare, common and frequent categories ("oLRPr", "oLRPc", "oLRPf"), rounded to 3
    decimals. Every category's optimal threshold and components go to a json file as
    :class:`CocoLRPMetric` writes it (``classes`` for 'bbox', ``segm_classes`` for 'segm').
    Nothing detected at all: LVISMetric evaluates nothing, and no oLRP is reported.

    Args:
        thresholds_file (str, optional): path of the thresholds json. Defaults to None.
        lrp_ties (str): 'position' (LRP-Error's) or 'threshold'. Defaults to 'position'.
        **kwargs: the arguments of :class:`mmdet.evaluation.LVISMetric`.
    """

    def __init__(
        self, thresholds_file: Optional[str] = None, lrp_ties: str = 'position', **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if lrp_ties not in TIES:
            raise ValueError(f'lrp_ties must be one of {TIES}, got {lrp_ties!r}')
        self.thresholds_file = thresholds_file
        self.lrp_ties = lrp_ties

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """LVISMetric's results plus the LRP ones (see the class docstring).

        Args:
            results (list): the processed results of every image, as LVISMetric takes them.

        Returns:
            Dict[str, float]: the metrics by name.
        """
        evaluations: List = []
        with keep_evaluations(lvis_metric_module, ('LVISEval',), evaluations):
            eval_results = super().compute_metrics(results)
        if self.format_only:
            return eval_results
        logger = MMLogger.get_current_instance()
        by_type = {}
        for evaluation in evaluations:
            iou_type = evaluation.params.iou_type
            if iou_type not in self.metrics or not evaluation.params.use_cats:
                continue  # the class-agnostic 'proposal' evaluation
            by_type[iou_type] = per_class = self._class_olrp(evaluation)
            eval_results.update(self._lrp_results(iou_type, per_class, logger))
        if by_type:
            content = dict(iou_thr=LRP_IOU_THR, max_dets=300, ties=self.lrp_ties)
            names = [cat['name'] for cat in self._lvis_api.load_cats(self.cat_ids)]
            for iou_type, per_class in by_type.items():
                key = 'classes' if iou_type == 'bbox' else f'{iou_type}_classes'
                content[key] = class_entries(names, self.cat_ids, per_class)
            path = thresholds_path(self.thresholds_file, self.outfile_prefix, logger)
            write_thresholds(path, content, logger)
        return eval_results

    def _class_olrp(self, evaluation) -> List[ClassOLRP]:
        """oLRP of every category, in the order of ``self.cat_ids``."""
        matches = lvis_class_matches(evaluation, LRP_IOU_THR)
        by_cat = {
            int(cat_id): optimal_lrp(
                m.scores, m.is_tp, m.ious, m.num_gts, LRP_IOU_THR, m.is_ignored, self.lrp_ties
            )
            for cat_id, m in zip(evaluation.params.cat_ids, matches)
        }
        return [by_cat[int(cat_id)] for cat_id in self.cat_ids]

    def _lrp_results(
        self, iou_type: str, per_class: List[ClassOLRP], logger: MMLogger
    ) -> Dict[str, float]:
        """The moLRP means, overall and by frequency group."""
        means = {
            f'{iou_type}_{name}': mean_over_classes([getattr(r, key) for r in per_class])
            for key, name in COMPONENTS.items()
        }
        frequencies = [cat['frequency'] for cat in self._lvis_api.load_cats(self.cat_ids)]
        for frequency in FREQUENCIES:
            means[f'{iou_type}_moLRP_{frequency}'] = mean_over_classes(
                [r.olrp for r, f in zip(per_class, frequencies) if f == frequency]
            )
        logger.info(f'{iou_type}_oLRP_copypaste: ' + ' '.join(f'{v:.3f}' for v in means.values()))
        return {name: round(value, 3) for name, value in means.items()}

"""Checks of a head's ground truth and outputs, made where they enter the head."""

from typing import List, Optional, Sequence

import torch
from torch import Tensor

from mmdet.structures.bbox import get_box_tensor


def image_name(index: int, img_metas: Optional[Sequence[dict]] = None) -> str:
    """``image <index> of the batch``, with its ``img_id`` and ``img_path`` when known."""
    meta = img_metas[index] if img_metas is not None and index < len(img_metas) else {}
    known = [f'{key} {meta[key]}' for key in ('img_id', 'img_path') if key in meta]
    return f'image {index} of the batch' + (f' ({", ".join(known)})' if known else '')


def check_ground_truth(
    labels: Sequence[Tensor],
    boxes: Sequence[Tensor],
    num_classes: int,
    img_metas: Optional[Sequence[dict]] = None,
) -> None:
    """Raises ValueError naming the image and the label or box if a ground-truth label lies
    outside 0 .. C-1, or a box is not finite or has x2 < x1 or y2 < y1 (one host
    synchronisation when all is well).

    Args:
        labels (Sequence[Tensor]): per image, shape (G, ), int class labels.
        boxes (Sequence[Tensor]): per image, shape (G, 4), boxes (x1, y1, x2, y2).
        num_classes (int): number of classes C.
        img_metas (Sequence[dict], optional): per image, its meta information (for the message).
    """
    if not labels:
        return
    flags = torch.stack(
        [
            torch.stack(
                [
                    ((image_labels < 0) | (image_labels >= num_classes)).any(),
                    (~torch.isfinite(image_boxes)).any(),
                    (
                        (image_boxes[:, 2] < image_boxes[:, 0])
                        | (image_boxes[:, 3] < image_boxes[:, 1])
                    ).any(),
                ]
            )
            for image_labels, image_boxes in zip(labels, boxes)
        ]
    ).tolist()
    for index, (bad_label, not_finite, inverted) in enumerate(flags):
        name = image_name(index, img_metas)
        if bad_label:
            label = next(v for v in labels[index].tolist() if not 0 <= v < num_classes)
            raise ValueError(
                f'ground-truth label {label} of {name} lies outside 0 .. '
                f'{num_classes - 1} (num_classes = {num_classes})'
            )
        if not_finite:
            raise ValueError(f'NaN or Inf in a ground-truth box of {name}')
        if inverted:
            box = next(b for b in boxes[index].tolist() if b[2] < b[0] or b[3] < b[1])
            raise ValueError(
                f'ground-truth box {box} of {name} has x2 < x1 or y2 < y1: boxes '
                'must be (x1, y1, x2, y2) with x2 >= x1 and y2 >= y1'
            )


def check_gt_instances(
    batch_gt_instances: Sequence, num_classes: int, img_metas: Optional[Sequence[dict]] = None
) -> None:
    """:func:`check_ground_truth` of the ``labels`` and ``bboxes`` of every image's
    ground-truth :obj:`InstanceData`."""
    check_ground_truth(
        [gt.labels for gt in batch_gt_instances],
        [get_box_tensor(gt.bboxes) for gt in batch_gt_instances],
        num_classes,
        img_metas,
    )


def check_finite_outputs(what: str, tensors: List[Tensor], hint: str = '') -> None:
    """Raises ValueError ``NaN or Inf in <what>`` (and ``hint``) if any tensor is not finite."""
    if tensors and not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
        raise ValueError(f'NaN or Inf in {what}' + (f': {hint}' if hint else ''))


def check_use_sigmoid(loss: str, use_sigmoid: bool) -> bool:
    """``use_sigmoid`` of a ranking loss, which must be True: it ranks one sigmoid logit per
    class (the heads read the attribute to build their classifier)."""
    if not use_sigmoid:
        raise ValueError(f'{loss} ranks one sigmoid logit per class: use_sigmoid must be True')
    return True

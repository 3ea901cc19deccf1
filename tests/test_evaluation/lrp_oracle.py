"""Brute-force oLRP of one class, written from the definitions, for small cases only.

For every candidate set of detections (every distinct score threshold, or every prefix of the
score order as LRP-Error takes it), match them from scratch COCO-style (per image, descending
score; a detection takes the unmatched non-crowd ground truth of highest IoU >= tau, else a
crowd ground truth with intersection / detection area >= tau and is then ignored, else it is a
false positive), and compute LRP. oLRP is the first minimum.
"""


def box_overlap(det, gt, crowd):
    """IoU of two xywh boxes; intersection over the detection's area for a crowd gt."""
    iw = min(det[0] + det[2], gt[0] + gt[2]) - max(det[0], gt[0])
    ih = min(det[1] + det[3], gt[1] + gt[3]) - max(det[1], gt[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    det_area = det[2] * det[3]
    union = det_area if crowd else det_area + gt[2] * gt[3] - inter
    return inter / union


def match_image(dets, gts, tau):
    """dets: [(box, score)] in descending score; gts: [(box, iscrowd)].

    Returns a list of ('tp', iou) / ('fp', None) / ('ignored', None), one per detection.
    """
    taken = [False] * len(gts)
    out = []
    for box, _ in dets:
        best, best_iou = None, tau
        for j, (gt_box, crowd) in enumerate(gts):
            if crowd or taken[j]:
                continue
            iou = box_overlap(box, gt_box, False)
            if iou >= best_iou:
                best, best_iou = j, iou
        if best is not None:
            taken[best] = True
            out.append(('tp', best_iou))
            continue
        crowd_hit = any(crowd and box_overlap(box, gt_box, True) >= tau for gt_box, crowd in gts)
        out.append(('ignored', None) if crowd_hit else ('fp', None))
    return out


def ranked_detections(images, max_dets):
    """Every detection as (image index, box, score), in LRP-Error's order: each image's top
    ``max_dets`` by descending score (stable), image after image, then sorted stably by score."""
    ranked = [
        (i, box, score)
        for i, (dets, _) in enumerate(images)
        for box, score in sorted(dets, key=lambda d: -d[1])[:max_dets]
    ]
    return sorted(ranked, key=lambda d: -d[2])


def lrp_of(images, kept, tau):
    """LRP and (num_tp, num_fp, sum of 1 - IoU) of the detections ``kept`` [(image, box, score)],
    matched from scratch image by image."""
    num_gts = sum(1 for _, gts in images for _, crowd in gts if not crowd)
    num_tp = num_fp = 0
    loc = 0.0
    for i, (_, gts) in enumerate(images):
        dets = [(box, score) for j, box, score in kept if j == i]
        for kind, iou in match_image(dets, gts, tau):
            if kind == 'tp':
                num_tp += 1
                loc += 1 - iou
            elif kind == 'fp':
                num_fp += 1
    lrp = (loc / (1 - tau) + num_fp + num_gts - num_tp) / (num_gts + num_fp)
    return lrp, num_tp, num_fp, loc


def brute_force_olrp(images, tau=0.5, max_dets=100, ties='threshold'):
    """images: [(dets, gts)] with dets [(xywh, score)] and gts [(xywh, iscrowd)].

    ``ties='threshold'``: the candidates are the detections scoring >= s for every distinct
    score s; ``'position'``: the first k detections of LRP-Error's order for every k. The first
    minimum wins. Without any true positive, oLRP is 1 and loc, fp and threshold are NaN.
    Returns dict(olrp, loc, fp, fn, threshold) at the optimum, None without ground truth.
    """
    nan = float('nan')
    num_gts = sum(1 for _, gts in images for _, crowd in gts if not crowd)
    if num_gts == 0:
        return None
    ranked = ranked_detections(images, max_dets)
    if lrp_of(images, ranked, tau)[1] == 0:
        return dict(olrp=1.0, loc=nan, fp=nan, fn=1.0, threshold=nan)
    best = None
    for k in range(1, len(ranked) + 1):
        if ties == 'threshold' and k < len(ranked) and ranked[k][2] == ranked[k - 1][2]:
            continue
        lrp, num_tp, num_fp, loc = lrp_of(images, ranked[:k], tau)
        if best is None or lrp < best['olrp'] - 1e-12:
            best = dict(
                olrp=lrp,
                loc=loc / num_tp if num_tp else nan,
                fp=num_fp / (num_tp + num_fp) if num_tp + num_fp else nan,
                fn=(num_gts - num_tp) / num_gts,
                threshold=ranked[k - 1][2],
            )
    return best

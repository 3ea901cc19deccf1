"""Brute-force oLRP of one class, written from the definitions, for small cases only.

For every distinct score s: keep each image's top ``max_dets`` detections with score >= s, match
them from scratch COCO-style (descending score; a detection takes the unmatched non-crowd ground
truth of highest IoU >= tau, else a crowd ground truth with intersection / detection area >= tau
and is then ignored, else it is a false positive), and compute LRP. oLRP is the minimum, at the
highest such s.
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


def lrp_at(images, threshold, tau, max_dets):
    """LRP and (num_tp, num_fp, sum of 1 - IoU) of the detections scoring >= threshold."""
    num_gts = sum(1 for _, gts in images for _, crowd in gts if not crowd)
    num_tp = num_fp = 0
    loc = 0.0
    for dets, gts in images:
        ranked = sorted(dets, key=lambda d: -d[1])[:max_dets]
        kept = [d for d in ranked if d[1] >= threshold]
        for kind, iou in match_image(kept, gts, tau):
            if kind == 'tp':
                num_tp += 1
                loc += 1 - iou
            elif kind == 'fp':
                num_fp += 1
    lrp = (loc / (1 - tau) + num_fp + num_gts - num_tp) / (num_gts + num_fp)
    return lrp, num_tp, num_fp, loc


def brute_force_olrp(images, tau=0.5, max_dets=100):
    """images: [(dets, gts)] with dets [(xywh, score)] and gts [(xywh, iscrowd)].

    Thresholds that keep no counted (non-ignored) detection are no candidates. Returns
    dict(olrp, loc, fp, fn, threshold) at the optimum, None without ground truth.
    """
    num_gts = sum(1 for _, gts in images for _, crowd in gts if not crowd)
    if num_gts == 0:
        return None
    best = dict(olrp=1.0, loc=float('nan'), fp=float('nan'), fn=1.0, threshold=float('nan'))
    found = False
    for s in sorted({s for dets, _ in images for _, s in dets}, reverse=True):
        lrp, num_tp, num_fp, loc = lrp_at(images, s, tau, max_dets)
        if num_tp + num_fp == 0:
            continue
        if not found or lrp < best['olrp'] - 1e-12:
            found = True
            best = dict(
                olrp=lrp,
                loc=loc / num_tp if num_tp else float('nan'),
                fp=num_fp / (num_tp + num_fp),
                fn=(num_gts - num_tp) / num_gts,
                threshold=s,
            )
    return best

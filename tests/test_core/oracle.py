"""Dense float64 references of aLRP Loss and AP Loss, written from the papers' equations.

Every relation H(s_j - s_i) is an explicit entry of a P x M matrix, and AP Loss's interpolation
is the sequential running maximum over positives in ascending score. For small M only.
"""

import numpy as np


def smoothed_step(x, delta):
    return np.clip(x / (2 * delta) + 0.5, 0.0, 1.0)


def relations(scores, targets, delta):
    """H[i, j] = H(s_j - s_i) for positive i and every logit j; plus rank+, FP, rank."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    t = np.asarray(targets).reshape(-1).astype(np.int64)
    pos = np.flatnonzero(t == 1)
    neg = t == 0
    rel = smoothed_step(s[None, :] - s[pos][:, None], delta)
    pos_rel = rel[:, pos] * (1 - np.eye(len(pos)))  # k != i
    fp = rel[:, neg].sum(1)
    rank_pos = 1 + pos_rel.sum(1)
    return s, pos, neg, rel, pos_rel, fp, rank_pos, rank_pos + fp


def alrp_oracle(scores, targets, errors, delta=1.0, eps=1e-5):
    """Returns loss_cls, loss_loc, d loss_cls / d scores (error-driven), d loss_loc / d e."""
    s, pos, neg, rel, pos_rel, fp, rank_pos, rank = relations(scores, targets, delta)
    e = np.asarray(errors, dtype=np.float64)
    num_pos = len(pos)
    grad = np.zeros_like(s)
    if num_pos == 0:
        return 0.0, 0.0, grad, np.zeros(0)
    loss_cls = 1 - np.mean(rank_pos / rank)
    for i in range(num_pos):
        if fp[i] > eps:
            g_i = -(pos_rel[i] @ e + fp[i]) / rank[i]
            grad[pos[i]] = g_i
            grad[neg] += rel[i, neg] * (-g_i) / fp[i]
    grad /= num_pos
    order = np.argsort(-s[pos], kind='stable')
    loss_loc = np.mean(np.cumsum(e[order]) / rank[order])
    grad_e = np.zeros(num_pos)
    grad_e[order] = np.cumsum((1 / rank[order])[::-1])[::-1] / num_pos
    return loss_cls, loss_loc, grad, grad_e


def ap_oracle(scores, targets, delta=1.0):
    """Returns the AP Loss and its error-driven gradient, processing positives one by one."""
    s, pos, neg, rel, pos_rel, fp, rank_pos, rank = relations(scores, targets, delta)
    grad = np.zeros_like(s)
    num_pos = len(pos)
    if num_pos == 0:
        return 0.0, grad
    best, interpolated = 0.0, np.zeros(num_pos)
    for i in np.argsort(s[pos], kind='stable'):
        precision = rank_pos[i] / rank[i]
        if precision >= best:
            best = precision
            grad[neg] += rel[i, neg] / rank[i]
        else:
            grad[neg] += rel[i, neg] / rank[i] * (1 - best) / (1 - precision)
        grad[pos[i]] = -(1 - best)
        interpolated[i] = best
    return 1 - interpolated.mean(), grad / num_pos

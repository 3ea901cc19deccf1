"""Dense float64 reference of Rank & Sort Loss (Oksuz et al., ICCV 2021) from its definitions.

Every relation H(s_k - s_i) of a positive i to a logit k is an explicit entry of a P x M matrix;
the updates are summed positive by positive. rank+(i) counts the positive itself with
H(0) (1/2 for delta > 0, 1 for delta = 0), as the definition sum_k H(s_k - s_i) over all
positives k says. For small M only.
"""

import numpy as np


def step(x, delta):
    """H(x): clamp(x / (2 delta) + 1/2, 0, 1) for delta > 0, the hard step [x >= 0] for 0."""
    x = np.asarray(x, dtype=np.float64)
    if delta == 0:
        return (x >= 0).astype(np.float64)
    return np.clip(x / (2 * delta) + 0.5, 0.0, 1.0)


def rs_oracle(scores, targets, ious, delta=0.5, eps=1e-10):
    """Returns loss_rank, loss_sort and the error-driven updates of the M logits that each of
    them carries (the ranking update, the sorting update), all float64.

    Args:
        scores: M logits; targets: M labels (1 positive, 0 negative, -1 ignored);
        ious: one IoU target in [0, 1] per positive, in index order of the positives.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    t = np.asarray(targets).reshape(-1).astype(np.int64)
    y = np.asarray(ious, dtype=np.float64).reshape(-1)
    pos, neg = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
    num_pos = len(pos)
    grad_rank, grad_sort = np.zeros_like(s), np.zeros_like(s)
    if num_pos == 0:
        return 0.0, 0.0, grad_rank, grad_sort
    assert y.shape == (num_pos,)
    # rel_pos[i, k] = H(s_k - s_i) over positives (k = i included), rel_neg over negatives.
    rel_pos = step(s[pos][None, :] - s[pos][:, None], delta)
    rel_neg = step(s[neg][None, :] - s[pos][:, None], delta)
    rank_pos = rel_pos.sum(1)
    fp = rel_neg.sum(1)
    ranking_error = fp / (rank_pos + fp)
    current = rel_pos @ (1 - y) / rank_pos
    at_least = y[None, :] >= y[:, None]  # [y_k >= y_i]
    target = (rel_pos * at_least) @ (1 - y) / (rel_pos * at_least).sum(1)
    sorting_error = current - target
    missorted = rel_pos * (y[None, :] < y[:, None])  # m_ik = [y_k < y_i] H(s_k - s_i)
    for i in range(num_pos):
        if fp[i] > eps:
            grad_rank[pos[i]] -= ranking_error[i]
            grad_rank[neg] += rel_neg[i] * ranking_error[i] / fp[i]
        total = missorted[i].sum()
        if total > eps:
            grad_sort[pos[i]] -= sorting_error[i]
            grad_sort[pos] += missorted[i] * sorting_error[i] / total
    return (
        ranking_error.mean(),
        sorting_error.mean(),
        grad_rank / num_pos,
        grad_sort / num_pos,
    )

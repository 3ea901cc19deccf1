"""Hypothesis strategies for ranking-loss batches: sizes, ties, ignored labels, scales, deltas."""

import numpy as np
import torch
from hypothesis import strategies as st


@st.composite
def ranking_batches(draw, with_errors=False, min_pos=0, dtype=torch.float32):
    """(scores, targets, errors or None, delta) with M in 1..160 logits."""
    m = draw(st.integers(1, 160))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(['normal', 'ties', 'huge', 'tiny', 'separated']))
    if kind == 'normal':
        scores = rng.normal(size=m) * draw(st.sampled_from([0.1, 1.0, 4.0]))
    elif kind == 'ties':  # few distinct values, many exact ties across labels
        scores = rng.choice(np.array([-1.5, -0.5, 0.0, 0.25, 0.5, 2.0]), size=m)
    elif kind == 'huge':
        scores = rng.normal(size=m) * 1e5
    elif kind == 'tiny':
        scores = rng.normal(size=m) * 1e-7
    else:  # saturated relations: clusters far apart
        scores = rng.choice(np.array([-50.0, 0.0, 50.0]), size=m) + rng.normal(size=m) * 0.3
    p_pos = draw(st.sampled_from([0.02, 0.1, 0.4, 0.9]))
    p_ign = draw(st.sampled_from([0.0, 0.2]))
    u = rng.random(m)
    targets = np.where(u < p_pos, 1, np.where(u < p_pos + p_ign, -1, 0))
    if min_pos and (targets == 1).sum() < min_pos:
        targets[rng.choice(m, size=min(min_pos, m), replace=False)] = 1
    delta = draw(st.sampled_from([0.05, 0.5, 1.0, 2.5]))
    scores_t = torch.tensor(scores, dtype=dtype)
    targets_t = torch.tensor(targets, dtype=torch.long)
    errors = None
    if with_errors:
        errors = torch.tensor(
            rng.random(int((targets == 1).sum())) * draw(st.sampled_from([0.0, 1.0, 10.0])),
            dtype=dtype,
        )
    return scores_t, targets_t, errors, delta

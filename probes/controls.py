"""Control labels and null baselines for probes.

- Control task (after Hewitt & Liang, 2019): the labels are permuted at the level of items
  (groups), within strata, so the marginal distribution of the labels — and, with strata such as
  the task, their distribution inside each stratum — is kept while the link between an item's
  activations and its label is broken. A probe's ``control_score`` is its mean cross-validated
  score on such labels; ``selectivity = score - control_score``.
- Permutation null: the same group-level permutation, drawn independently, re-running the whole
  nested cross-validation for each draw; ``p_perm = (1 + #{null >= observed}) / (1 + n_perm)``.
- Random-feature baseline: the probe trained on ``k`` random Gaussian projections of the site's
  activations (a low-capacity readout that any high-variance direction can feed).

Groups are only exchanged with groups of the same size (and stratum), so that every sample of an
item receives the labels of the samples of one other item, in order.
"""
from __future__ import annotations

import numpy as np


def permuted_labels(
    y: np.ndarray,
    group_codes: np.ndarray,
    strata_codes: np.ndarray | None,
    n_draws: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``n_draws`` group-level permutations of ``y`` [n] within strata; returns [n, n_draws].

    ``group_codes`` [n]: integer item index 0..G-1; ``strata_codes`` [n] or None (one stratum),
    constant within each item."""
    n_groups = int(group_codes.max()) + 1
    sizes = np.bincount(group_codes, minlength=n_groups)
    order = np.argsort(group_codes, kind="stable")
    rows = np.full((n_groups, sizes.max()), -1)
    position = np.arange(len(y)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    rows[group_codes[order], position] = order
    group_stratum = np.zeros(n_groups, dtype=np.int64)
    if strata_codes is not None:
        group_stratum[group_codes] = strata_codes
    classes = [np.flatnonzero((group_stratum == s) & (sizes == m))
               for s, m in sorted(set(zip(group_stratum.tolist(), sizes.tolist(), strict=True)))]
    valid = rows >= 0
    out = np.empty((len(y), n_draws))
    for k in range(n_draws):
        mapping = np.arange(n_groups)
        for members in classes:
            mapping[members] = rng.permutation(members)
        out[rows[valid], k] = y[rows[mapping][valid]]
    return out


def random_projection(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``X`` [n, d] projected on ``k`` random Gaussian directions, [n, k]."""
    return X @ rng.standard_normal((X.shape[1], k))

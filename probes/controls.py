"""Null labels and baselines for probes.

- Permutation null: the labels are permuted at the level of items (groups), within strata, so
  the marginal distribution of the labels — and, with strata such as the task, their
  distribution inside each stratum — is kept while the link between an item's activations and
  its label is broken; the whole nested cross-validation is re-run for each draw;
  ``p_perm = (1 + #{null >= observed}) / (1 + n_perm)``, ``null_mean`` = the mean null score.
  (Not Hewitt & Liang's control task: that needs a label every occurrence of a type shares, so
  that a probe can memorise it across folds; grouped CV keeps every item in one fold, so the
  permuted-label score is the null's, and the columns are named for it.)
- Random-feature baseline: the probe trained on ``k`` random Gaussian projections of the site's
  activations (a low-capacity readout that any high-variance direction can feed).

Every item of a stratum is exchangeable with every other, whatever its number of samples (rows
at ``think_close`` or ``step_k`` vary, as censored traces drop out): item ``i`` receives the labels
of item ``pi(i)``, its j-th sample the donor's ``j mod m`` -th label (m = the donor's sample
count). For a per-item target (constant within items, as ``handan probe`` builds them) this is an
exact permutation of the item labels.
"""

from __future__ import annotations

import numpy as np

from experiments.errors import InputError


def item_permutations(
    item_strata: np.ndarray | None, n_items: int, n_draws: int, rng: np.random.Generator
) -> np.ndarray:
    """``n_draws`` permutations of ``n_items`` items within strata: ``donors`` [n_draws, G], item
    ``g`` receiving the label of item ``donors[k, g]`` in draw ``k``. ``item_strata`` [G] integer
    codes or None (one stratum). Raises InputError when no stratum has two items."""
    item_strata = np.zeros(n_items, dtype=np.int64) if item_strata is None else item_strata
    classes = [np.flatnonzero(item_strata == s) for s in np.unique(item_strata)]
    if n_draws and all(len(members) < 2 for members in classes):
        raise InputError(
            "every stratum holds a single item, so a within-stratum permutation is the "
            "identity; use fewer strata (or none) for the permutation null"
        )
    donors = np.tile(np.arange(n_items), (n_draws, 1))
    for k in range(n_draws):
        for members in classes:
            donors[k, members] = rng.permutation(members)
    return donors


def permuted_labels(
    y: np.ndarray,
    group_codes: np.ndarray,
    strata_codes: np.ndarray | None,
    n_draws: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``n_draws`` group-level permutations of ``y`` [n] within strata; returns [n, n_draws].

    ``group_codes`` [n]: integer item index 0..G-1; ``strata_codes`` [n] or None (one stratum),
    constant within each item. Raises ValueError when no stratum has two items (nothing to permute)."""
    n_groups = int(group_codes.max()) + 1
    sizes = np.bincount(group_codes, minlength=n_groups)
    starts = np.cumsum(sizes) - sizes
    order = np.argsort(
        group_codes, kind="stable"
    )  # rows of item g: order[starts[g]:starts[g]+sizes[g]]
    within = np.arange(len(y)) - starts[group_codes[order]]  # sample number of each sorted row
    group_stratum = None
    if strata_codes is not None:
        group_stratum = np.zeros(n_groups, dtype=np.int64)
        group_stratum[group_codes] = strata_codes
    donors = item_permutations(group_stratum, n_groups, n_draws, rng)
    out = np.empty((len(y), n_draws))
    recipient = group_codes[order]
    for k in range(n_draws):
        d = donors[k][recipient]
        out[order, k] = y[order[starts[d] + within % sizes[d]]]
    return out


def random_projection(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``X`` [n, d] projected on ``k`` random Gaussian directions, [n, k]."""
    return X @ rng.standard_normal((X.shape[1], k))

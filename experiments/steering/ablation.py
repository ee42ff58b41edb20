"""Head ablation as a control condition of the steering experiment: does knocking out the heads
that carry the target change how long the model thinks, more than knocking out random heads?

- the heads: the ``k`` heads whose output (``attn_z.L.H``, from the model's head store) best
  predicts ``target`` on the direction-fitting items (a small sweep, grouped CV, no permutations,
  like the steering site's choice), chosen before any held-out item is generated;
- the dose: ``t`` in ``doses`` moves each chosen head's output to ``(1 - t) z + t m``
  (``hooks.ablation.Ablate``; ``m`` = 0 for ``mode = "zero"``, the head's mean over the fit items
  at the recorded position for ``"mean"``), at the steering positions; ``t = 0`` is the steering
  experiment's own unsteered run;
- the controls: ``n_random`` sets of ``k`` other heads (drawn once, seeded), ablated at the same
  doses and named ``random{j}``, so ``experiments.steering.analysis.summarise_steering`` gives the
  chosen heads' dose-response slope with its cluster-robust CI and p, and ``p_random``, the rank
  of its |slope| among the random sets'.

The rows go through the steering engine with the other conditions' machinery
(``experiments.steering.conditions``: one row per (condition, item, sample), resumable, guarded);
the table has ``STEERING_COLUMNS`` with ``direction`` = the head set and ``alpha`` = the dose.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.errors import InputError
from experiments.steering.conditions import UNSTEERED, Condition, make_condition, run_conditions
from hooks.ablation import HeadAblation

CHOSEN = "heads_best"


def choose_heads(store, items, traces, *, model, target, position, fit_ids, k, seed):
    """(heads, table): the ``k`` best heads of the head ``store`` for ``target`` on the fit
    items (fold-wise score of a grouped-CV ridge probe; no permutations), and every head's row."""
    from probes.layer_sweep import sweep
    from probes.store_sweep import first_sample_mask
    from probes.targets import build_target

    y = build_target(target, items, traces, model=model)
    features, ids = {}, None
    for site in head_sites(store):
        X, index = store.load(site, position)
        keep = first_sample_mask(index) & index["item_id"].isin(fit_ids & set(y.index)).to_numpy()
        features[site], ids = X[keep], index.loc[keep, "item_id"].astype(str).to_numpy()
    if len(features) <= k:
        raise InputError(
            f"{model} has {len(features)} heads in its head store; ablating {k} of them leaves "
            "no head for the random controls: lower steering.heads.k"
        )
    table = sweep(features, y.loc[ids].to_numpy(float), ids, n_permutations=0, n_boot=0, seed=seed)
    table = table.sort_values("score", ascending=False, kind="stable")
    heads = table["site"].head(k).tolist()
    rows = table.assign(
        model=model, target=target, position=position, chosen=table.site.isin(heads)
    )
    return heads, rows[["model", "site", "position", "target", "score", "n", "chosen"]]


def head_sites(store) -> list[str]:
    """The per-head ``attn_z`` sites of a store, in its order."""
    from probes.heads import is_head_site

    return [s for s in store.sites if is_head_site(s)]


def random_head_sets(heads: Sequence[str], chosen: Sequence[str], n: int, seed: int) -> list:
    """``n`` sets of ``len(chosen)`` heads drawn without replacement from the other heads."""
    rng = np.random.default_rng(seed)
    others = sorted(set(heads) - set(chosen), key=list(heads).index)
    return [sorted(rng.choice(others, len(chosen), replace=False).tolist()) for _ in range(n)]


def head_means(store, sites: Sequence[str], position: str, fit_ids: set) -> dict[str, np.ndarray]:
    """Each head's mean output over the fit items at ``position`` (one row per item)."""
    from probes.store_sweep import first_sample_mask

    out = {}
    for site in sites:
        X, index = store.load(site, position)
        keep = first_sample_mask(index) & index["item_id"].astype(str).isin(fit_ids).to_numpy()
        out[site] = X[keep].mean(0)
    return out


def run_head_ablation(
    model,
    tokenizer,
    spec,
    items: pd.DataFrame,
    *,
    head_sets: Mapping[str, Sequence[str]],
    doses: Sequence[float],
    means: Mapping[str, np.ndarray] | None,
    positions: str,
    config,
    out: str | Path,
    progress: bool = True,
) -> pd.DataFrame:
    """Generate every (head set, dose) condition on ``items``; the steering table (``direction`` =
    head set, ``alpha`` = dose; the dose-0 rows are the unsteered run, repeated per set)."""
    from experiments.generation import tracefile
    from experiments.steering.experiment import STEERING_COLUMNS

    doses = sorted({float(t) for t in doses} - {0.0})
    if not doses or min(doses) < 0 or max(doses) > 1:
        raise InputError(f"ablation doses {doses}; pass doses in (0, 1] (1 = full ablation)")
    out = Path(out)
    generation = config.identity() | dict(  # as experiment.run_steering's conditions record it
        chat_template=spec.chat_template,
        system_prompt=spec.system_prompt,
        template_kwargs=spec.template_kwargs,
        source=spec.source,
        revision=spec.revision,
    )
    base = make_condition(spec.name, generation, UNSTEERED, 0.0, None, {})
    conditions = {
        (name, t): Condition(
            name,
            t,
            HeadAblation(tuple(sites), t, None if means is None else {s: means[s] for s in sites}),
            dict(model=spec.name, generation=generation, alpha=t, direction=name)
            | dict(
                heads=list(sites), positions=positions, mode="zero" if means is None else "mean"
            ),
        )
        for name, sites in head_sets.items()
        for t in doses
    }
    run_conditions(
        model,
        tokenizer,
        spec,
        items,
        [base, *conditions.values()],
        site="",
        positions=positions,
        config=config,
        out=out,
        checker=None,
        progress=progress,
    )
    keys = pd.DataFrame(
        [(str(i), s) for i in items["item_id"] for s in range(config.samples)],
        columns=["item_id", "sample"],
    )

    def rows(c: Condition) -> pd.DataFrame:
        table = tracefile.read_traces(c.path(out)).astype({"item_id": str})
        return keys.merge(table, on=["item_id", "sample"], how="left", validate="one_to_one")

    zero = rows(base)
    frames = [
        (zero if t == 0 else rows(conditions[(name, t)])).assign(direction=name, alpha=t)
        for name in head_sets
        for t in [0.0, *doses]
    ]
    table = pd.concat(frames, ignore_index=True)
    return table[STEERING_COLUMNS].astype({"alpha": "float64", "reasoning_tokens": "int64"})


HEAD_ABLATION_CSV = "head_ablation.csv"
HEAD_ABLATION_SUMMARY_CSV = "head_ablation_summary.csv"
HEAD_CHOICE_CSV = "head_choice.csv"


def ablation_study(
    model,
    tokenizer,
    spec,
    head_store,
    *,
    items,
    traces,
    fit_ids,
    test_items,
    settings,
    config,
    seed,
    out,
    progress=True,
):
    """(table, choice): the held-out head-ablation table of one model (module docstring) and the
    head choice rows. ``test_items`` in generation order (e.g. ``study.by_length``);
    ``settings``: ``SteerCfg`` (its ``heads``, ``target``, ``position``, ``inject``);
    ``out(condition)``: the folder of the generations under a condition hash."""
    from experiments.contracts import stable_hash

    h = settings.heads
    position = settings.position if settings.position in head_store.positions else None
    if position is None:
        raise InputError(
            f"{spec.name}'s head store has no {settings.position!r} rows (it has "
            f"{head_store.positions}); set probes.heads.positions to include it"
        )
    chosen, choice = choose_heads(
        head_store,
        items,
        traces,
        model=spec.name,
        target=settings.target,
        position=position,
        fit_ids=fit_ids,
        k=h.k,
        seed=seed,
    )
    sets = {CHOSEN: chosen} | {
        f"random{j}": s
        for j, s in enumerate(random_head_sets(head_sites(head_store), chosen, h.n_random, seed))
    }
    used = sorted({s for v in sets.values() for s in v})
    means = head_means(head_store, used, position, fit_ids) if h.mode == "mean" else None
    folder = out(stable_hash(["heads", sets, h.doses, h.mode, settings.inject, config.identity()]))
    table = run_head_ablation(
        model,
        tokenizer,
        spec,
        test_items,
        head_sets=sets,
        doses=h.doses,
        means=means,
        positions=settings.inject,
        config=config,
        out=folder,
        progress=progress,
    )
    return table, choice


def write_head_ablation(studies: Sequence, out: str | Path) -> None:
    """``head_ablation.csv`` (the table), ``head_ablation_summary.csv`` (``summarise_steering``:
    slope over the doses, CI, p, ``p_random`` among the random head sets) and ``head_choice.csv``
    of the studies that ablated heads; a previous run's files are removed when none did."""
    from experiments.steering.analysis import summarise_steering

    out = Path(out)
    paths = [out / f for f in (HEAD_ABLATION_CSV, HEAD_ABLATION_SUMMARY_CSV, HEAD_CHOICE_CSV)]
    tables = [s.heads for s in studies if s.heads is not None]
    if not tables:
        for path in paths:
            path.unlink(missing_ok=True)
        return
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(paths[0], index=False)
    summarise_steering(table).to_csv(paths[1], index=False)
    choice = [s.head_choice for s in studies if s.head_choice is not None]
    pd.concat(choice, ignore_index=True).to_csv(paths[2], index=False)

"""The behavioural analysis end to end: tables in, tidy result tables (and figures) out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from experiments.behaviour.alignment import alignment_table
from experiments.behaviour.allocation import item_effects
from experiments.behaviour.compare import comparisons_table
from experiments.behaviour.costs import Exclusions, item_costs, prepare
from experiments.behaviour.effort import effort_table, fingerprints
from experiments.behaviour.inflation import inflation_table
from experiments.behaviour.multiplicity import apply_holm
from experiments.behaviour.reliability import human_halves, model_halves
from experiments.behaviour.roles import check_triples, pair_lists, triples_from_roles
from experiments.behaviour.transfer import transfer_table
from experiments.errors import InputError

#: result key -> CSV file name written by :func:`write_behaviour_outputs`
OUTPUT_FILES = {
    "alignment": "alignment.csv",
    "comparisons": "comparisons.csv",
    "transfer": "transfer.csv",
    "inflation": "inflation.csv",
    "effort": "effort.csv",
    "fingerprints": "fingerprints.csv",
    "item_effects": "item_effects.csv",
    "exclusions": "exclusions.csv",
    "costs": "item_costs.csv",
}


def _resolve_triples(
    triples: list[dict] | None,
    roles: dict[str, str] | None,
    families: dict[str, str] | None,
    models: set[str],
) -> list[dict]:
    if triples is not None:
        triples = check_triples(triples)
    elif roles:
        triples = triples_from_roles(roles, families)
    else:
        return []
    missing = sorted({m for t in triples for m in t.values()} - models)
    if missing:
        raise InputError(
            f"model(s) {missing} named in the triples have no usable traces "
            f"(models with traces: {sorted(models)}); fix the names in the pairs/roles"
        )
    return triples


def _check_trials(trials: pd.DataFrame) -> pd.DataFrame:
    missing = {"item_id", "rt_s"} - set(trials.columns)
    if missing:
        raise InputError(
            f"human_trials lacks column(s) {sorted(missing)}; it needs one row per kept correct "
            "trial with item_id and rt_s (seconds)"
        )
    rt = pd.to_numeric(trials["rt_s"], errors="coerce")
    return trials.loc[rt.gt(0), ["item_id", "rt_s"]].astype({"item_id": str, "rt_s": float})


def analyse(
    items: pd.DataFrame,
    traces: pd.DataFrame,
    *,
    triples: list[dict] | None = None,
    roles: dict[str, str] | None = None,
    families: dict[str, str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    human_trials: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """Every behavioural measure of the README's "Behavioural analysis" section.

    ``triples`` (teacher/student/baseline dicts) take precedence over ``roles`` (and
    ``families``); with neither, only the per-model tables (alignment, fingerprints,
    item_effects) are filled. ``human_trials`` (optional; ``item_id``, ``rt_s``: the kept
    correct trials behind the Items table's ``human_rt_s``) gives the split-half reliability of
    human cost; without it ``reliability_human`` is NaN. Returns DataFrames under the keys of
    :data:`OUTPUT_FILES` (``costs`` holds the per-(model, item) costs with each model's
    ``role``)."""
    exclusions = Exclusions()
    items, traces = prepare(items, traces, exclusions)
    costs = item_costs(items, traces)
    triples = _resolve_triples(triples, roles, families, set(costs["model"]))
    role_of = {m: r for t in triples for r, m in t.items()} if triples else dict(roles or {})
    costs["role"] = costs["model"].map(role_of).fillna("")
    rng = np.random.default_rng(seed)
    pairs = pair_lists(triples)
    for a, b in dict.fromkeys(pairs["compare"] + pairs["inflation"]):
        shared = set(costs.loc[costs["model"] == a, "item_id"]) & set(
            costs.loc[costs["model"] == b, "item_id"]
        )
        if not shared:
            exclusions.add(
                "pairs",
                f"{a} and {b} share no items; their comparisons are empty",
                model=f"{a}|{b}",
            )
    halves = model_halves(traces, rng=rng)
    human = None if human_trials is None else human_halves(_check_trials(human_trials), rng=rng)
    comparisons = comparisons_table(
        costs,
        pairs["compare"],
        primary={(t["teacher"], t["student"]) for t in triples},
        halves=halves,
        human_halves=human,
        n_boot=n_boot,
        rng=rng,
    )
    transfer = transfer_table(costs, pairs["transfer"], comparisons, n_boot=n_boot, rng=rng)
    apply_holm(comparisons, transfer)
    return {
        "alignment": alignment_table(
            costs, halves=halves, human_halves=human, n_boot=n_boot, rng=rng
        ),
        "comparisons": comparisons,
        "transfer": transfer,
        "inflation": inflation_table(costs, pairs["inflation"]),
        "effort": effort_table(costs, triples),
        "fingerprints": fingerprints(costs),
        "item_effects": item_effects(traces),
        "exclusions": exclusions.frame(),
        "costs": costs,
    }


def write_behaviour_outputs(
    results: dict[str, pd.DataFrame],
    out_dir: Path,
    *,
    figures: bool = True,
    figures_dir: Path | None = None,
) -> list[Path]:
    """Write the CSVs of :data:`OUTPUT_FILES` into ``out_dir`` and, with ``figures``, the PNG+SVG
    figures into ``figures_dir`` (default ``out_dir / "figures"``). Returns the written paths."""
    from experiments.behaviour import figures as figs

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for key, name in OUTPUT_FILES.items():
        if key in results:
            path = out_dir / name
            results[key].to_csv(path, index=False)
            written.append(path)
    if figures:
        fig_dir = Path(figures_dir) if figures_dir else out_dir / "figures"
        fig_dir.mkdir(parents=True, exist_ok=True)
        costs = results["costs"]
        roles = dict(zip(costs["model"], costs["role"], strict=True))
        written += figs.cost_vs_human(costs, results["alignment"], fig_dir)
        written += figs.alignment_by_role(results["alignment"], roles, fig_dir)
        written += figs.inflation_plot(costs, results["inflation"], fig_dir)
    return written

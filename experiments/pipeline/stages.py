"""The stages of a run (see ``experiments.pipeline.runner``); each reads and writes the files of
the run folder (``experiments.pipeline.layout``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from experiments.errors import InputError, NotProbeable
from experiments.models.specs import ModelSpec
from experiments.pipeline.config import RunConfig
from experiments.pipeline.layout import RunLayout


def build_items(cfg: RunConfig, path: Path) -> None:
    """Concatenate the configured datasets/files, keep ``tasks``, cap items per task (the items
    with the smallest sha1 of their id — a fixed, content-free subsample)."""
    from experiments.contracts import validate_items
    from experiments.data import items_from

    items = pd.concat(
        [items_from(entry, cfg.data_dir) for entry in cfg.datasets], ignore_index=True
    )
    if cfg.tasks:
        unknown = sorted(set(cfg.tasks) - set(items["task"]))
        if unknown:
            raise InputError(
                f"tasks {unknown} are not in the datasets {cfg.datasets}; they have {sorted(set(items['task']))}"
            )
        items = items[items["task"].isin(cfg.tasks)]
    if cfg.max_items_per_task:
        key = items["item_id"].map(lambda s: hashlib.sha1(s.encode()).hexdigest())
        items = (
            items.assign(_k=key)
            .sort_values("_k")
            .groupby("task", sort=False)
            .head(cfg.max_items_per_task)
        )
        items = items.drop(columns="_k").sort_index()
    from experiments.contracts import write_parquet_atomic

    write_parquet_atomic(validate_items(items.reset_index(drop=True)), path)


def resolve_specs(cfg: RunConfig) -> dict[str, ModelSpec]:
    from experiments.models.specs import get_spec

    specs = {}
    for name in cfg.models:
        spec = get_spec(name)
        if spec.name in cfg.model_sources:
            spec = spec.model_copy(update={"source": cfg.model_sources[spec.name]})
        specs[spec.name] = spec
    for key, names in (
        ("model_sources", cfg.model_sources),
        ("steering.models", cfg.steering.models or []),
    ):
        unknown = sorted(set(names) - set(specs))
        if unknown:
            raise InputError(
                f"{key} names {unknown}, which are not among the run's models {sorted(specs)}"
            )
    return specs


def generate_all(
    cfg: RunConfig, specs: dict[str, ModelSpec], items: pd.DataFrame, run: RunLayout, progress: bool
) -> None:
    """Traces + activation store for every model (resumed; the configured engine, vLLM followed
    by teacher-forced capture), or its imported traces (no store), then the run's traces table."""
    from experiments.contracts import TRACE_COLUMNS, write_parquet_atomic
    from experiments.generation.per_model import imported_traces, traces_and_store

    unknown = sorted(set(cfg.imported) - set(specs))
    if unknown:
        raise InputError(f"imported names {unknown}, which are not among the run's models")
    tables = []
    run.model_traces("").parent.mkdir(exist_ok=True)
    for name, spec in specs.items():
        if name in cfg.imported:
            tables.append(imported_traces(cfg.imported[name], name, items, run.model_traces(name)))
            continue
        tables.append(
            traces_and_store(
                spec,
                items,
                cfg.generation.resolve(spec),
                traces=run.model_traces(name),
                store=run.store(name),
                sites=cfg.record.sites,
                positions=cfg.record.positions,
                store_dtype=cfg.record.dtype,
                device=cfg.device,
                progress=progress,
            )
        )
    write_parquet_atomic(pd.concat(tables, ignore_index=True).astype(TRACE_COLUMNS), run.traces)


def triples(cfg: RunConfig, specs: dict[str, ModelSpec]) -> list[dict]:
    """teacher → student ← baseline triples: the pairs file, else the registry's pairings among
    the run's models, else one triple from the specs' roles (its baseline optional); none when the
    roles name no teacher or no student (then only the per-model analyses run). Roles that do not
    pair unambiguously are an error naming the config's `pairs:` key."""
    from experiments.behaviour import load_pairs, triples_from_roles
    from experiments.models.specs import triples_for

    if cfg.pairs:
        return load_pairs(cfg.pairs)
    found = triples_for(list(specs))
    if found:
        return found
    roles = {n: s.role for n, s in specs.items() if s.role}
    return triples_from_roles(roles) if {"teacher", "student"} <= set(roles.values()) else []


def behaviour_stage(
    cfg: RunConfig,
    specs,
    pairing: list[dict],
    items: pd.DataFrame,
    traces: pd.DataFrame,
    run: RunLayout,
) -> None:
    from experiments.behaviour import analyse, write_behaviour_outputs

    results = analyse(
        items,
        traces,
        triples=pairing,
        roles={n: s.role for n, s in specs.items() if s.role} or None,
        n_boot=cfg.behaviour.n_boot,
        seed=cfg.generation.seed,
    )
    write_behaviour_outputs(results, run.behaviour, figures_dir=run.figures)


def probe_stage(
    cfg: RunConfig,
    specs,
    pairing: list[dict],
    items: pd.DataFrame,
    traces: pd.DataFrame,
    run: RunLayout,
    progress: bool,
) -> None:
    """Probe sweeps for every model × target, each model's selection-adjusted best site
    (``probes/best_site.csv``), contrasts within each triple (``probes/compare.csv``, refitted
    inside halves of the items both models have), figures. Each family adjusted: the contrasts'
    primary (best layer) and secondary (pre-registered depths) endpoints and the best sites vs
    their baselines by Holm, the decodability screen of every model × target by BH
    (``probes.multiplicity``).
    A target a model cannot have (e.g. its own reasoning length when it never reasons) is
    listed in ``probes/skipped.csv`` with the reason instead of failing the run."""
    from rich.progress import Progress

    from experiments.pipeline.figures import plot_depth_profile
    from hooks.store import ActivationStore
    from probes import compare
    from probes.crossfit import best_site
    from probes.multiplicity import adjust, holm_by
    from probes.store_sweep import crossfit_store, sweep_store

    run.probes.mkdir(parents=True, exist_ok=True)
    p = cfg.probes
    seed = cfg.generation.seed
    fit = dict(cv=p.cv, dtype=p.dtype, seed=seed)
    halving = dict(fit, n_splits=p.n_splits)
    tables, halves, best, skipped = [], {}, [], []
    stores = {}
    for name in specs:
        if (run.store(name) / "manifest.json").exists():
            stores[name] = ActivationStore(run.store(name))
        else:  # imported traces come without activations
            reason = f"no activation store at {run.store(name)} (imported traces?)"
            skipped += [dict(model=name, target=target, reason=reason) for target in p.targets]
    with Progress(disable=not progress) as bar:
        task = bar.add_task("probes", total=len(stores) * len(p.targets))
        for name, store in stores.items():
            for target in p.targets:
                try:
                    table, _ = sweep_store(
                        store,
                        items,
                        traces,
                        target,
                        model=name,
                        positions=p.positions,
                        n_permutations=p.n_permutations,
                        n_boot=p.n_boot,
                        **fit,
                    )
                    half = crossfit_store(
                        store, items, traces, target, model=name, positions=p.positions, **halving
                    )
                except NotProbeable as err:
                    skipped.append(dict(model=name, target=target, reason=str(err)))
                else:
                    tables.append(table)
                    halves[(name, target)] = half
                    best.append(dict(model=name, target=target) | best_site(half, table))
                bar.advance(task)
    if not tables:
        raise InputError(f"no probe could be fitted: {skipped}")
    sweep = pd.concat(tables, ignore_index=True)
    sweep.to_csv(run.probe_sweep, index=False)
    best_table = pd.DataFrame(best)
    best_table.insert(
        best_table.columns.get_loc("p_fwe") + 1, "p_bh", adjust(best_table.p_fwe, "fdr_bh")
    )
    best_table["p_baseline_holm"] = adjust(best_table.p_baseline)
    best_table.to_csv(run.probe_best_site, index=False)
    pd.DataFrame(skipped, columns=["model", "target", "reason"]).to_csv(
        run.probe_skipped, index=False
    )
    contrasts = []
    for t in pairing:
        for a, b in [("teacher", "student"), ("student", "baseline"), ("teacher", "baseline")]:
            for target in p.targets:
                pair = [(t.get(a), target), (t.get(b), target)]
                if not all(key in halves for key in pair):
                    continue
                ha, hb = (halves[key] for key in pair)
                if ha.halves_id != hb.halves_id:  # not the same items: refit on the shared ones
                    shared = sorted(set(ha.item_ids) & set(hb.item_ids))
                    ha, hb = (
                        crossfit_store(
                            stores[m],
                            items,
                            traces,
                            target,
                            model=m,
                            positions=p.positions,
                            item_ids=shared,
                            **halving,
                        )
                        for m, _ in pair
                    )
                c = compare(ha, hb, depths=p.depths)
                contrasts.append(c.assign(model_a=t[a], model_b=t[b], target=target))
    if contrasts:
        table = pd.concat(contrasts, ignore_index=True)
        table["p_holm"] = holm_by(table, "endpoint")
        table.to_csv(run.probe_compare, index=False)
    else:  # a previous run's contrasts must not reach the report
        run.probe_compare.unlink(missing_ok=True)
    for target, rows in sweep[~sweep["site"].str.startswith("baseline:")].groupby("target"):
        safe = target.replace("|", "_given_")
        plot_depth_profile(rows, run.figures / f"probe_{safe}.png", title=f"probe: {target}")
    from experiments.pipeline.head_stage import head_stage

    head_stage(cfg, specs, pairing, items, traces, run, progress)  # probes.heads: per-head part


def held_out(item_ids: pd.Series, share: float) -> pd.Series:
    """True for the items held out from direction fitting: a fixed, content-free split by the sha1
    of the item id (the same items whatever the run)."""
    # salted, so it is independent of the sha1 order that `max_items_per_task` subsamples by
    h = item_ids.map(
        lambda s: int(hashlib.sha1(f"holdout:{s}".encode()).hexdigest()[:8], 16) / 16**8
    )
    return h < share


def _best_site(run: RunLayout, model: str, target: str, position: str) -> str:
    """The site the steering stage chose for ``model``: the best fold-wise probe score of
    ``target`` at ``position`` on the fit items, below the last layer (``steering/site_choice.csv``,
    written by ``experiments.steering.study.choose_site``)."""
    from experiments.steering.outputs import SITE_CSV

    sites = pd.read_csv(run.steering / SITE_CSV)
    rows = sites[(sites.model == model) & (sites.target == target) & (sites.position == position)]
    if not rows["chosen"].any():
        raise InputError(f"the steering stage chose no {target!r} site for {model}; run it first")
    return str(rows.loc[rows["chosen"], "site"].iloc[0])


def _head_store(run: RunLayout, model: str):
    """The model's head store (``probes.heads``), or None when the probes stage made none."""
    from experiments.pipeline.head_stage import head_store
    from hooks.store import ActivationStore

    path = head_store(run, model)
    return ActivationStore(path) if (path / "manifest.json").exists() else None


def steering_stage(
    cfg: RunConfig,
    specs,
    pairing: list[dict],
    items: pd.DataFrame,
    traces: pd.DataFrame,
    run: RunLayout,
    progress: bool,
) -> None:
    """Each model's steering study (``experiments.steering.study``: site, directions, scale and
    linear alpha range chosen on the items not held out; steered on the held-out ones), then the
    tables, figure and teacher − student slope contrasts. Generations are cached under
    ``runs/{model}/{condition}``, the condition being a hash of the site, injection positions,
    scale, directions and sampling settings: a rerun under the same condition resumes them, any
    change starts a new folder beside the old one."""
    from experiments.models.loading import free_memory, load_model
    from experiments.steering import outputs
    from experiments.steering.analysis import compare_slopes
    from experiments.steering.study import run_study, subsample
    from hooks.store import ActivationStore
    from probes.directions import save_direction

    s = cfg.steering
    names = s.models or [n for n, spec in specs.items() if spec.has_think]
    test = held_out(items["item_id"], s.holdout)
    fit_ids, test_items = set(items.loc[~test, "item_id"]), items[test]
    test_items = test_items[subsample(test_items["item_id"], s.max_items)]
    if not fit_ids or test_items.empty:
        raise InputError(
            f"steering.holdout={s.holdout} leaves {len(fit_ids)} items to fit the direction and "
            f"{len(test_items)} to steer; use more items or a holdout nearer 0.5"
        )
    studies = []
    for name in names:
        spec = specs[name]
        model, tokenizer = load_model(spec, device=cfg.device)
        study = run_study(
            model,
            tokenizer,
            spec,
            store=ActivationStore(run.store(name)),
            items=items,
            traces=traces,
            fit_ids=fit_ids,
            test_items=test_items,
            settings=s,
            config=cfg.generation.resolve(spec, samples=s.samples),
            seed=cfg.generation.seed,
            out=lambda condition, name=name: run.steering_run(name, condition),
            progress=progress,
            head_store=_head_store(run, name),
        )
        for direction, (vector, meta) in study.directions.items():
            save_direction(run.direction(name, direction), vector, meta)
        studies.append(study)
        del model
        free_memory()
    from experiments.steering.ablation import write_head_ablation

    write_head_ablation(studies, run.steering)
    steering_table = pd.concat([st.steering for st in studies], ignore_index=True)
    outputs.write_steering_outputs(steering_table, run.steering, items=items)
    outputs.write_choices(studies, run.steering)
    for f in run.steering.glob("dose_response.*"):
        if f.suffix in {".png", ".svg"}:
            (run.figures / f"steering_{f.name}").write_bytes(f.read_bytes())
    contrasts = [
        compare_slopes(steering_table, t["teacher"], t["student"])
        for t in pairing
        if {t["teacher"], t["student"]} <= set(names)
    ]
    if contrasts:
        pd.concat(contrasts, ignore_index=True).to_csv(run.slope_contrast, index=False)
    else:  # a previous run's contrasts must not stay beside this run's tables
        run.slope_contrast.unlink(missing_ok=True)

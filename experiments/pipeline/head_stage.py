"""The per-head part of the probes stage: which attention heads carry the target, in the teacher
and the student (``probes.heads``).

For each model of ``probes.heads.models`` (default: the teacher and the student of the first
triple) the heads' outputs ``attn_z.*`` are recorded teacher-forced from the model's own traces
at ``probes.heads.positions`` only (default ``prompt_end``: one forward over each prompt) into
``store_heads/{model}`` — the generation stage records no head, so heads cost nothing where they
are not asked for — then swept like the layers (``probes/heads_sweep.csv``: grouped CV, baselines,
permutation null, ``p_fwe`` = max-T over every layer x head x position of the model), each model's
selection-adjusted best head (``probes/heads_best.csv``) and the teacher - student best-head
contrasts (``probes/heads_compare.csv``; heads are not matched across models: each model's own
best head, picked on one half and scored on the other; at pre-registered depths, the best head of
each model's nearest layer), Holm within each endpoint.
"""

from __future__ import annotations

import shutil

import pandas as pd

from experiments.errors import HandanError, NotProbeable
from experiments.pipeline.config import RunConfig
from experiments.pipeline.layout import RunLayout

HEADS_SWEEP_CSV = "heads_sweep.csv"
HEADS_BEST_CSV = "heads_best.csv"
HEADS_COMPARE_CSV = "heads_compare.csv"
HEADS_SKIPPED_CSV = "heads_skipped.csv"
HEAD_SITES = "attn_z.*"


def head_store(run: RunLayout, model: str):
    return run.root / "store_heads" / model


def head_models(cfg: RunConfig, specs, pairing: list[dict]) -> list[str]:
    """The models whose heads are probed: ``probes.heads.models``, else the first triple's
    teacher and student (none without a triple), among the recorded models."""
    h = cfg.probes.heads
    if not h.enabled or (h.models is None and not pairing):
        return []
    names = h.models if h.models is not None else [pairing[0][r] for r in ("teacher", "student")]
    return [n for n in names if n in specs]


def head_outputs(cfg: RunConfig, specs, pairing: list[dict], run: RunLayout) -> list:
    """What a finished head part leaves: its skip list and the head store of every model it did
    not skip (a deleted ``store_heads/`` reruns the probes stage instead of silently dropping the
    head ablation that reads it)."""
    names = head_models(cfg, specs, pairing)
    skipped_file = run.probes / HEADS_SKIPPED_CSV
    if not names or not skipped_file.exists():
        return [skipped_file] if names else []
    skipped = set(pd.read_csv(skipped_file)["model"].astype(str))
    return [skipped_file] + [
        head_store(run, n) / "manifest.json" for n in names if n not in skipped
    ]


def record_heads(cfg: RunConfig, spec, run: RunLayout, progress: bool):
    """The model's ``attn_z.*`` at the head positions, teacher-forced over its own traces (their
    own prompt ids: the file may hold items a narrowed rerun left out; the sweeps keep the run's)."""
    from experiments.generation.forced import record_from_traces
    from experiments.models.loading import free_memory, load_model
    from hooks.sites import expand_sites

    model, tokenizer = load_model(spec, device=cfg.device)
    try:
        return record_from_traces(
            model,
            tokenizer,
            spec,
            run.model_traces(spec.name),
            store=head_store(run, spec.name),
            sites=expand_sites(model, HEAD_SITES),
            positions=cfg.probes.heads.positions,
            store_dtype=cfg.record.dtype,
            batch_size=cfg.generation.batch_size or 64,  # prompt positions: short rows
            progress=progress,
        )
    finally:
        del model
        free_memory()


def head_stage(cfg: RunConfig, specs, pairing, items, traces, run: RunLayout, progress) -> None:
    """Record, sweep and contrast the heads of :func:`head_models` (see the module docstring);
    writes nothing (and removes a previous run's head tables) when no model is chosen."""
    from probes.crossfit import best_site
    from probes.heads import compare_heads, head_rows
    from probes.multiplicity import holm_by
    from probes.store_sweep import crossfit_store, sweep_store

    names = head_models(cfg, specs, pairing)
    files = [run.probes / f for f in (HEADS_SWEEP_CSV, HEADS_BEST_CSV, HEADS_COMPARE_CSV)]
    for f in files:
        f.unlink(missing_ok=True)
    if not names:
        return
    p, h = cfg.probes, cfg.probes.heads
    fit = dict(cv=p.cv, dtype=p.dtype, seed=cfg.generation.seed, positions=h.positions)
    tables, halves, best, skipped, stores = [], {}, [], [], {}
    for name in names:
        try:
            store = stores[name] = record_heads(cfg, specs[name], run, progress)
        except HandanError as err:  # e.g. no attention output projection to split into heads
            shutil.rmtree(head_store(run, name), ignore_errors=True)
            skipped += [dict(model=name, target=t, reason=str(err)) for t in h.targets]
            continue
        for target in h.targets:
            try:
                table, _ = sweep_store(
                    store,
                    items,
                    traces,
                    target,
                    model=name,
                    n_permutations=p.n_permutations,
                    n_boot=p.n_boot,
                    **fit,
                )
                half = crossfit_store(
                    store, items, traces, target, model=name, n_splits=p.n_splits, **fit
                )
            except NotProbeable as err:
                skipped.append(dict(model=name, target=target, reason=str(err)))
                continue
            tables.append(table)
            halves[(name, target)] = half
            best.append(dict(model=name, target=target, n_heads=len(store.sites)))
            best[-1] |= best_site(half, table)
    pd.DataFrame(skipped, columns=["model", "target", "reason"]).to_csv(
        run.probes / HEADS_SKIPPED_CSV, index=False
    )
    if not tables:
        return
    head_rows(pd.concat(tables, ignore_index=True)).to_csv(files[0], index=False)
    pd.DataFrame(best).to_csv(files[1], index=False)
    contrasts = []
    for t in pairing:
        for target in h.targets:
            pair = [(t.get("teacher"), target), (t.get("student"), target)]
            if all(k in halves for k in pair):
                ha, hb = (halves[k] for k in pair)
                if ha.halves_id != hb.halves_id:  # not the same items: refit on the shared ones
                    shared = sorted(set(ha.item_ids) & set(hb.item_ids))
                    ha, hb = (
                        crossfit_store(
                            stores[m],
                            items,
                            traces,
                            target,
                            model=m,
                            item_ids=shared,
                            n_splits=p.n_splits,
                            **fit,
                        )
                        for m, _ in pair
                    )
                c = compare_heads(ha, hb)
                contrasts.append(c.assign(model_a=pair[0][0], model_b=pair[1][0], target=target))
    if contrasts:
        table = pd.concat(contrasts, ignore_index=True)
        table["p_holm"] = holm_by(table, "endpoint")
        table.to_csv(files[2], index=False)

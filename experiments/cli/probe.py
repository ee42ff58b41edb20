"""``handan probe`` and ``handan probe-compare``: linear-probe sweeps over an activation store and
contrasts between models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiments.cli.common import friendly_errors
from experiments.errors import InputError


def register(app: typer.Typer) -> None:
    """Add ``probe`` and ``probe-compare`` to ``app``."""

    @app.command("probe")
    @friendly_errors
    def probe(
        store: Annotated[Path, typer.Option(help="activation store folder (handan record --out)")],
        items: Annotated[Path, typer.Option(help="Items table (.parquet/.csv)")],
        traces: Annotated[Path, typer.Option(help="Traces table (.parquet/.csv)")],
        target: Annotated[
            str,
            typer.Option(
                help="human_rt, reasoning_tokens, correct, prompt_tokens, "
                "feat_*, or 'a|b' (a with b partialled out)"
            ),
        ],
        out: Annotated[Path, typer.Option(help="output folder")],
        model: Annotated[
            str | None, typer.Option(help="model name in the traces (default: the store's)")
        ] = None,
        positions: Annotated[
            list[str] | None, typer.Option(help="positions to probe (default: all)")
        ] = None,
        sites: Annotated[
            str | None,
            typer.Option(
                help="the store's sites to probe, comma-separated names or patterns, e.g. "
                "'attn_z.*' (every layer x head: one family for p_fwe); default: all"
            ),
        ] = None,
        cv: int = 5,
        n_permutations: int = 100,
        n_boot: int = 1000,
        seed: int = 0,
        device: Annotated[
            str | None, typer.Option(help="torch device (default: cuda if available)")
        ] = None,
        dtype: Annotated[
            str, typer.Option(help="float64 (exact) or float32 (about 2x faster on CPU)")
        ] = "float64",
        n_splits: Annotated[
            int | None,
            typer.Option(
                help="random halvings for the selection-adjusted best site "
                "(default: probes.crossfit.N_SPLITS)"
            ),
        ] = None,
    ) -> None:
        """Probe TARGET at every site x position of STORE (or --sites, e.g. 'attn_z.*' for a head
        sweep); writes probe_sweep.csv,
        oof_predictions.parquet, best_site.csv (selection-adjusted) and probe_depth.png to OUT."""
        import pandas as pd

        from experiments.behaviour.inputs import read_traces_file
        from experiments.data.items_file import load_items_file
        from experiments.pipeline.figures import plot_depth_profile
        from experiments.pipeline.layout import (
            PROBE_BEST_SITE_CSV,
            PROBE_PREDICTIONS,
            PROBE_SWEEP_CSV,
        )
        from hooks.store import ActivationStore
        from probes.crossfit import N_SPLITS, best_site
        from probes.store_sweep import crossfit_store, sweep_store

        the_store = ActivationStore(store)
        tables = load_items_file(items), read_traces_file(traces)
        fit = dict(model=model, positions=positions, cv=cv, seed=seed, device=device, dtype=dtype)
        fit["sites"] = None if sites is None else [s.strip() for s in sites.split(",") if s.strip()]
        table, preds = sweep_store(
            the_store, *tables, target, n_permutations=n_permutations, n_boot=n_boot, **fit
        )
        n_splits = n_splits or N_SPLITS
        half = crossfit_store(the_store, *tables, target, n_splits=n_splits, **fit)
        best = pd.DataFrame([best_site(half, table)])
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / PROBE_SWEEP_CSV, index=False)
        preds.to_parquet(out / PROBE_PREDICTIONS, index=False)
        best.to_csv(out / PROBE_BEST_SITE_CSV, index=False)
        plot_depth_profile(
            _per_layer(table), out / "probe_depth.png", title=f"{table['model'].iloc[0]}: {target}"
        )
        b = best.iloc[0]
        typer.echo(
            f"wrote {out / PROBE_SWEEP_CSV} ({len(table)} rows); best site (selection-adjusted, "
            f"{n_splits} halvings) {b['site']}|{b['position']} {table['metric'].iloc[0]}="
            f"{b['score']:.3f} [{b['score_lo']:.3f}, {b['score_hi']:.3f}], max-T p "
            f"{b['p_fwe']:.3f}"
        )

    @app.command("probe-compare")
    @friendly_errors
    def probe_compare(
        store_a: Annotated[Path, typer.Option(help="activation store of model A")],
        store_b: Annotated[Path, typer.Option(help="activation store of model B")],
        items: Annotated[Path, typer.Option(help="Items table (.parquet/.csv)")],
        traces: Annotated[Path, typer.Option(help="Traces table with both models' traces")],
        target: Annotated[str, typer.Option(help="the target, as for `handan probe`")],
        out: Annotated[Path, typer.Option(help="output folder")],
        model_a: Annotated[str | None, typer.Option(help="default: store A's model")] = None,
        model_b: Annotated[str | None, typer.Option(help="default: store B's model")] = None,
        positions: Annotated[
            list[str] | None, typer.Option(help="positions to compare (default: all)")
        ] = None,
        depths: Annotated[
            str | None,
            typer.Option(
                help="relative depths fixed before seeing data, comma-separated "
                "(default: probes.contrasts.PREREGISTERED_DEPTHS)"
            ),
        ] = None,
        n_splits: Annotated[
            int | None, typer.Option(help="random halvings (default: probes.crossfit.N_SPLITS)")
        ] = None,
        cv: int = 5,
        seed: int = 0,
        device: Annotated[
            str | None, typer.Option(help="torch device (default: cuda if available)")
        ] = None,
        dtype: Annotated[
            str, typer.Option(help="float64 (exact) or float32 (about 2x faster on CPU)")
        ] = "float64",
    ) -> None:
        """Contrast two models (A - B) by selection-adjusted best layer and pre-registered
        relative depths, refitting both inside the same halves of the items both have; writes
        probe_compare.csv (p_holm per endpoint) and probe_depth_compare.png."""
        import pandas as pd

        from experiments.behaviour.inputs import read_traces_file
        from experiments.data.items_file import load_items_file
        from experiments.pipeline.figures import plot_depth_profile
        from hooks.store import ActivationStore
        from probes.contrasts import PREREGISTERED_DEPTHS, compare
        from probes.crossfit import N_SPLITS
        from probes.multiplicity import holm_by
        from probes.store_sweep import StoreTarget, crossfit_store

        try:
            levels = (
                PREREGISTERED_DEPTHS
                if depths is None
                else [float(d) for d in depths.split(",") if d.strip()]
            )
        except ValueError as err:
            raise InputError(f"--depths {depths!r}: give numbers in [0, 1], e.g. 0.25,0.5") from err
        tables = load_items_file(items), read_traces_file(traces)
        stores = [ActivationStore(store_a), ActivationStore(store_b)]
        names = [model_a, model_b]
        shared = sorted(
            set.intersection(
                *(
                    set(StoreTarget(s, *tables, target, model=m).y_item.index)
                    for s, m in zip(stores, names, strict=True)
                )
            )
        )
        n_splits = n_splits or N_SPLITS
        fit = dict(positions=positions, item_ids=shared, n_splits=n_splits, cv=cv, seed=seed)
        halves = [
            crossfit_store(s, *tables, target, model=m, device=device, dtype=dtype, **fit)
            for s, m in zip(stores, names, strict=True)
        ]
        result = compare(*halves, depths=levels)
        result["p_holm"] = holm_by(result, "endpoint")
        labels = [m or s.manifest["model"] for s, m in zip(stores, names, strict=True)]
        result.insert(0, "model_b", labels[1])
        result.insert(0, "model_a", labels[0])
        out.mkdir(parents=True, exist_ok=True)
        result.to_csv(out / "probe_compare.csv", index=False)
        profile = pd.concat(
            [
                h.table()
                .groupby(["site", "position", "depth", "metric"], as_index=False)["score"]
                .mean()
                .assign(model=label, score_lo=float("nan"), score_hi=float("nan"))
                .assign(null_mean=float("nan"))
                for h, label in zip(halves, labels, strict=True)
            ],
            ignore_index=True,
        )
        profile = profile[~profile["site"].str.startswith("baseline:")]
        plot_depth_profile(
            profile, out / "probe_depth_compare.png", title=f"half-sample scores: {target}"
        )
        typer.echo(result.to_string(index=False))


def _per_layer(table):
    """Sweep rows to plot by depth: the rows of the sites that are not heads when there are
    some, else (a head sweep) the best head per layer x position."""
    from probes.heads import is_head_site

    heads = table["site"].map(is_head_site)
    others = ~heads & ~table["site"].str.startswith("baseline:")
    if others.any() or not heads.any():
        return table[~heads]
    best = table[heads].sort_values("score").groupby(["position", "layer"]).tail(1)
    return best.sort_values(["position", "layer"])

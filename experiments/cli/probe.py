"""``handan probe`` and ``handan probe-compare``: linear-probe sweeps over an activation store and
contrasts between models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiments.cli.common import friendly_errors
from experiments.errors import MissingInput


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
    ) -> None:
        """Probe TARGET at every site x position of STORE; writes probe_sweep.csv,
        oof_predictions.parquet and probe_depth.png to OUT."""
        from experiments.contracts import read_table, validate_items, validate_traces
        from experiments.pipeline.figures import plot_depth_profile
        from experiments.pipeline.layout import PROBE_PREDICTIONS, PROBE_SWEEP_CSV
        from hooks.store import ActivationStore
        from probes.store_sweep import sweep_store

        table, preds = sweep_store(
            ActivationStore(store),
            validate_items(read_table(items)),
            validate_traces(read_table(traces)),
            target,
            model=model,
            positions=positions,
            cv=cv,
            n_permutations=n_permutations,
            n_boot=n_boot,
            seed=seed,
            device=device,
            dtype=dtype,
        )
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / PROBE_SWEEP_CSV, index=False)
        preds.to_parquet(out / PROBE_PREDICTIONS, index=False)
        plot_depth_profile(
            table, out / "probe_depth.png", title=f"{table['model'].iloc[0]}: {target}"
        )
        best = table.loc[table["score"].idxmax()]
        typer.echo(
            f"wrote {out / PROBE_SWEEP_CSV} ({len(table)} rows); best {best['site']}|{best['position']} "
            f"{best['metric']}={best['score']:.3f} [{best['score_lo']:.3f}, {best['score_hi']:.3f}]"
        )

    @app.command("probe-compare")
    @friendly_errors
    def probe_compare(
        a: Annotated[Path, typer.Option(help="output folder of `handan probe` for model A")],
        b: Annotated[Path, typer.Option(help="output folder of `handan probe` for model B")],
        out: Annotated[Path, typer.Option(help="output folder")],
        depth_bins: int = 5,
        n_boot: int = 1000,
        seed: int = 0,
    ) -> None:
        """Contrast two probe sweeps (A - B) by best layer and relative depth; writes
        probe_compare.csv and probe_depth_compare.png."""
        import pandas as pd

        from experiments.pipeline.figures import plot_depth_profile
        from experiments.pipeline.layout import PROBE_PREDICTIONS, PROBE_SWEEP_CSV
        from probes.contrasts import compare

        loaded = []
        for folder in (a, b):
            for name in (PROBE_SWEEP_CSV, PROBE_PREDICTIONS):
                if not (folder / name).exists():
                    raise MissingInput(
                        f"{folder / name} does not exist; run `handan probe --out {folder}` first"
                    )
            loaded.append(
                (
                    pd.read_csv(folder / PROBE_SWEEP_CSV, keep_default_na=False, na_values=[""]),
                    pd.read_parquet(folder / PROBE_PREDICTIONS),
                )
            )
        (ta, pa), (tb, pb) = loaded
        result = compare(
            ta,
            tb,
            predictions_a=pa,
            predictions_b=pb,
            depth_bins=depth_bins,
            n_boot=n_boot,
            seed=seed,
        )
        result.insert(0, "model_b", tb["model"].iloc[0])
        result.insert(0, "model_a", ta["model"].iloc[0])
        out.mkdir(parents=True, exist_ok=True)
        result.to_csv(out / "probe_compare.csv", index=False)
        plot_depth_profile(pd.concat([ta, tb], ignore_index=True), out / "probe_depth_compare.png")
        typer.echo(result.to_string(index=False))

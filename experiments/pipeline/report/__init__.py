"""``report.md`` and ``summary.json`` of a run, written only from the run's own CSVs and tables.

Every number in the report is read from a file of the run (the path is named next to it), so the
report and the CSVs cannot disagree; each finding is one plain paragraph whose wording follows
from the numbers (e.g. whether a CI excludes zero), never the other way round.
"""

from __future__ import annotations

import json

import pandas as pd

from experiments.pipeline.layout import RunLayout
from experiments.pipeline.report.behaviour import behaviour_section
from experiments.pipeline.report.format import _table
from experiments.pipeline.report.heads import head_section
from experiments.pipeline.report.overview import brief, example_traces
from experiments.pipeline.report.probes import probe_section
from experiments.pipeline.report.seeds import seeds_section
from experiments.pipeline.report.steering import steering_section
from hooks.atomic import atomic_write


def _models_section(traces: pd.DataFrame) -> tuple[list[str], dict]:
    by = traces.groupby("model")
    stats = pd.DataFrame(
        {
            "traces": by.size(),
            "accuracy": by["correct"].mean(),
            "mean_reasoning_tokens": by["reasoning_tokens"].mean(),
            "finished_thinking": by["finished_thinking"].mean(),
        }
    )
    lines = ["## Models and traces (`traces.parquet`)", ""] + _table(
        ["model", "traces", "accuracy", "mean reasoning tokens", "finished thinking"],
        (
            [
                m,
                int(r.traces),
                f"{r.accuracy:.1%}",
                f"{r.mean_reasoning_tokens:.1f}",
                f"{r.finished_thinking:.1%}",
            ]
            for m, r in stats.iterrows()
        ),
    )
    return lines, stats.round(4).to_dict(orient="index")


def write_report(
    cfg, run: RunLayout, timings: dict[str, float], reused: set[str] = frozenset()
) -> dict:
    """Write the run's ``report.md`` and ``summary.json`` from its files; returns the summary."""
    items = pd.read_parquet(run.items)
    traces = pd.read_parquet(run.traces)
    lines = [
        f"# handan report: {cfg.name}",
        "",
        f"{len(items)} items in {items['task'].nunique()} tasks ({', '.join(sorted(items['task'].unique()))}); "
        f"models: {', '.join(traces['model'].unique())}.",
        "",
    ]
    model_lines, model_summary = _models_section(traces)
    sections = [behaviour_section(run), probe_section(run), steering_section(run)]
    heads = head_section(run)
    seeds = seeds_section(cfg, run)
    lines += brief(cfg, run, seeds[1], sections[1][1], sections[2][1])
    lines += model_lines + example_traces(run) + seeds[0]
    for sec in (sections[0][0], sections[1][0], heads[0], sections[2][0]):
        lines += sec
    figures = sorted(run.figures.glob("*.png"))
    if figures:
        lines += ["## Figures", ""] + [f"![{f.stem}](figures/{f.name})" for f in figures] + [""]
    lines += [
        "## Reproduce",
        "",
        "```",
        f"handan run {run.config}",
        "```",
        "",
        "## Stage timings (wall seconds when the stage last ran)",
        "",
    ]
    lines += _table(
        ["stage", "seconds", "this run"],
        ([k, f"{v:.1f}", "reused" if k in reused else "ran"] for k, v in timings.items()),
    )
    atomic_write(run.report, ("\n".join(lines) + "\n").encode())
    summary = dict(
        name=cfg.name,
        n_items=len(items),
        models=model_summary,
        alignment=sections[0][1],
        probes=sections[1][1],
        heads=heads[1],
        steering=sections[2][1],
        seeds=seeds[1],
        timings={k: round(v, 2) for k, v in timings.items()},
        reused=sorted(reused),
    )
    atomic_write(run.summary, json.dumps(summary, indent=2, default=float).encode())
    return summary

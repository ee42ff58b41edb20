"""Config-driven runs: items → generation with capture → behaviour → probes → steering → report.

``handan run CONFIG.yaml`` and ``handan demo`` both call :func:`run_pipeline`. Every stage reads
and writes files under ``out`` (layout in the README), so each can be rerun alone; generation
resumes batch by batch, and a stage whose inputs and settings are unchanged is skipped
(``out/stages.json`` keeps a hash of each stage's settings and inputs, and its wall time).

Items and generation always run (generation resumes, so a finished run costs only the reading).
Each later stage's hash covers its own settings and the content of everything it reads — items,
traces (hence the store), model specs, generation settings, the teacher/student/baseline
triples — and steering's also covers the probes stage's hash (it steers at the best probe site)
and ``behaviour.n_boot``: a change anywhere upstream reruns the stages downstream of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from experiments.contracts import stable_hash
from experiments.errors import InputError
from experiments.pipeline.config import RunConfig
from experiments.pipeline.layout import RunLayout


class Stages:
    """Bookkeeping of ``stages.json``: which stage ran with which settings, and how long.

    A stage's record is removed (and the file rewritten) before the stage starts and written back
    only when it has finished, each time atomically: a stage killed midway is never taken for
    current by a rerun, whatever files it left."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, dict] = self._read(path)
        self.timings: dict[str, float] = {}
        self.reused: set[str] = set()

    @staticmethod
    def _read(path: Path) -> dict[str, dict]:
        """The stage records of ``path`` ({} when there is none); a file that is not a JSON
        object of records is refused in one line naming it and the fix."""
        if not path.exists():
            return {}
        fix = "delete it and rerun: every stage then reruns (generation resumes from its files)"
        try:
            done = json.loads(path.read_bytes())
        except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise InputError(f"{path} is not valid JSON ({err}); {fix}") from err
        records = isinstance(done, dict) and all(
            isinstance(r, dict) and isinstance(r.get("seconds"), int | float) and "hash" in r
            for r in done.values()
        )
        if not records:
            raise InputError(f"{path} is not a JSON object of stage records; {fix}")
        return done

    def _save(self) -> None:
        from hooks.atomic import atomic_write

        atomic_write(self.path, json.dumps(self.done, indent=2).encode())

    def run(
        self,
        name: str,
        inputs: Any,
        outputs: list[Path],
        fn: Callable[[], Any],
        *,
        always: bool = False,
    ) -> str:
        """Run ``fn`` unless the stage last ran on the same ``inputs`` and its ``outputs`` exist;
        returns the stage's hash (for the stages that read its outputs)."""
        key = stable_hash(inputs)
        fresh = self.done.get(name, {}).get("hash") == key and all(p.exists() for p in outputs)
        if fresh and not always:
            self.timings[name] = self.done[name]["seconds"]
            self.reused.add(name)
            return key
        if self.done.pop(name, None) is not None:
            self._save()
        start = time.perf_counter()
        fn()
        # the value stages.json keeps, so the report prints the same number in every run
        self.timings[name] = round(time.perf_counter() - start, 2)
        self.done[name] = {"hash": key, "seconds": self.timings[name]}
        self._save()
        return key


def run_pipeline(
    cfg: RunConfig, *, progress: bool = True, source: str = "run config"
) -> dict[str, Any]:
    """Run every stage of ``cfg``; returns the summary written to ``summary.json``. Everything
    the config names is checked first (``preflight.check_run``; errors start with ``source``),
    before the run folder is touched."""
    import pandas as pd
    from rich.console import Console

    from experiments.pipeline import stages
    from experiments.pipeline.head_stage import head_outputs
    from experiments.pipeline.preflight import check_run
    from experiments.pipeline.report import write_report

    check_run(cfg, source=source)
    console = Console(stderr=True, quiet=not progress)
    run = RunLayout(Path(cfg.out))
    run.figures.mkdir(parents=True, exist_ok=True)
    run.config.write_text(yaml.safe_dump(cfg.model_dump(), sort_keys=False))
    book = Stages(run.stages)
    # always rebuilt (cheap): a dataset file edited in place must reach the later stages
    book.run(
        "items",
        cfg.model_dump(include={"data_dir", "datasets", "tasks", "max_items_per_task"}),
        [run.items],
        lambda: stages.build_items(cfg, run.items),
        always=True,
    )
    items = pd.read_parquet(run.items)
    console.print(f"[bold]items[/]: {len(items)} across {items['task'].nunique()} tasks")

    specs = stages.resolve_specs(cfg)
    pairing = stages.triples(cfg, specs)  # before generation: a pairing error costs nothing
    gen_settings = cfg.model_dump(include={"generation", "record", "model_sources", "imported"})
    # models with imported traces have no activation store: behaviour only
    recorded = {name: spec for name, spec in specs.items() if name not in cfg.imported}
    book.run(
        "generation",
        [gen_settings, list(specs)],
        [run.traces],
        lambda: stages.generate_all(cfg, specs, items, run, progress),
        always=True,
    )
    traces = pd.read_parquet(run.traces)
    data = stable_hash(
        [
            gen_settings,
            [s.model_dump() for s in specs.values()],
            pairing,
            items.to_json(),
            traces.to_json(),
        ]
    )  # what every later stage reads (hashed once: traces can be large)

    book.run(
        "behaviour",
        [cfg.behaviour.model_dump(), data],
        [run.behaviour_file("alignment")],
        lambda: stages.behaviour_stage(cfg, specs, pairing, items, traces, run),
    )
    from probes.crossfit import CI_METHOD

    probes_key = book.run(
        "probes",
        [cfg.probes.model_dump(), data, CI_METHOD],
        [run.probe_sweep, run.probe_best_site, *head_outputs(cfg, recorded, pairing, run)],
        lambda: stages.probe_stage(cfg, recorded, pairing, items, traces, run, progress),
    )
    if cfg.steering.enabled:
        book.run(
            "steering",
            [cfg.steering.model_dump(), cfg.behaviour.n_boot, probes_key],
            [run.steering_summary],
            lambda: stages.steering_stage(cfg, recorded, pairing, items, traces, run, progress),
        )

    start = time.perf_counter()
    summary = write_report(cfg, run, book.timings, book.reused)
    book.timings["report"] = time.perf_counter() - start
    console.print(f"[bold green]report[/]: {run.report}")
    return summary

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
from pydantic import BaseModel, ConfigDict, Field

from experiments.contracts import stable_hash


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerationCfg(_Cfg):
    samples: int = Field(4, ge=1)
    max_new_tokens: int | None = None  # None: each spec's default
    temperature: float | None = None
    top_p: float | None = None
    seed: int = 0
    batch_size: int = Field(32, ge=1)


class RecordCfg(_Cfg):
    sites: str = "resid_post.*"
    positions: list[str] = ["prompt_end"]
    dtype: str = "float32"


class ProbeCfg(_Cfg):
    targets: list[str] = ["human_rt", "reasoning_tokens", "reasoning_tokens|human_rt"]
    positions: list[str] | None = None  # None: every recorded position
    cv: int = 5
    n_permutations: int = 100
    n_boot: int = 1000
    dtype: str = "float64"  # "float32": about 2x faster on CPU, scores within ~1e-4


class SteerCfg(_Cfg):
    enabled: bool = True
    models: list[str] | None = None  # None: every model with a think span
    target: str = "reasoning_tokens"
    control_target: str = "human_rt"  # "the direction of a different target"
    position: str = "prompt_end"  # where the direction is read from the store
    inject: str = "prompt"  # where it is added: prompt | prompt_end | generated | all
    site: str | None = None  # None: the best probe site for `target`, per model
    method: str = "diff_means"
    alphas: list[float] = [-1.0, -0.5, 0.0, 0.5, 1.0]
    n_random: int = 3
    holdout: float = Field(0.5, gt=0, lt=1)  # share of items held out from direction fitting
    samples: int = Field(2, ge=1)


class BehaviourCfg(_Cfg):
    n_boot: int = 2000


class RunConfig(_Cfg):
    name: str = "run"
    out: str = "runs/run"
    data_dir: str | None = None  # None: HANDAN_DATA_DIR, else download
    datasets: list[str]  # dataset names (`handan data list`) or Items files
    tasks: list[str] | None = None
    max_items_per_task: int | None = None
    models: list[str]  # registry names or spec .yaml files
    model_sources: dict[str, str] = {}  # override a model's `source` (e.g. retrained organism)
    pairs: str | None = None  # PAIRS.yaml; None: from the specs' roles/registry pairings
    device: str | None = None
    generation: GenerationCfg = GenerationCfg()
    record: RecordCfg = RecordCfg()
    behaviour: BehaviourCfg = BehaviourCfg()
    probes: ProbeCfg = ProbeCfg()
    steering: SteerCfg = SteerCfg()

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> RunConfig:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"run config {path} does not exist (examples: experiments/configs/*.yaml)")
        return cls.model_validate({**(yaml.safe_load(path.read_text()) or {}), **overrides})


class Stages:
    """Bookkeeping of ``out/stages.json``: which stage ran with which settings, and how long."""

    def __init__(self, out: Path) -> None:
        self.path = out / "stages.json"
        self.done: dict[str, dict] = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.timings: dict[str, float] = {}
        self.reused: set[str] = set()

    def run(self, name: str, inputs: Any, outputs: list[Path], fn: Callable[[], Any], *,
            always: bool = False) -> str:
        """Run ``fn`` unless the stage last ran on the same ``inputs`` and its ``outputs`` exist;
        returns the stage's hash (for the stages that read its outputs)."""
        key = stable_hash(inputs)
        fresh = self.done.get(name, {}).get("hash") == key and all(p.exists() for p in outputs)
        if fresh and not always:
            self.timings[name] = self.done[name]["seconds"]
            self.reused.add(name)
            return key
        start = time.perf_counter()
        fn()
        self.timings[name] = time.perf_counter() - start
        self.done[name] = {"hash": key, "seconds": round(self.timings[name], 2)}
        self.path.write_text(json.dumps(self.done, indent=2))
        return key


def run_pipeline(cfg: RunConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run every stage of ``cfg``; returns the summary written to ``out/summary.json``."""
    import pandas as pd
    from rich.console import Console

    from experiments import stages

    console = Console(stderr=True, quiet=not progress)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(), sort_keys=False))
    book = Stages(out)
    items_path = out / "items.parquet"
    # always rebuilt (cheap): a dataset file edited in place must reach the later stages
    book.run("items", cfg.model_dump(include={"data_dir", "datasets", "tasks", "max_items_per_task"}),
             [items_path], lambda: stages.build_items(cfg, items_path), always=True)
    items = pd.read_parquet(items_path)
    console.print(f"[bold]items[/]: {len(items)} across {items['task'].nunique()} tasks")

    specs = stages.resolve_specs(cfg)
    pairing = stages.triples(cfg, specs)  # before generation: a pairing error costs nothing
    gen_settings = cfg.model_dump(include={"generation", "record", "model_sources"})
    book.run("generation", [gen_settings, list(specs)], [out / "traces.parquet"],
             lambda: stages.generate_all(cfg, specs, items, out, progress), always=True)
    traces = pd.read_parquet(out / "traces.parquet")
    data = stable_hash([gen_settings, [s.model_dump() for s in specs.values()], pairing, items.to_json(),
                  traces.to_json()])  # what every later stage reads (hashed once: traces can be large)

    behaviour_dir = out / "behaviour"
    book.run("behaviour", [cfg.behaviour.model_dump(), data], [behaviour_dir / "alignment.csv"],
             lambda: stages.behaviour(cfg, specs, pairing, items, traces, behaviour_dir))

    probes_dir = out / "probes"
    probes_key = book.run("probes", [cfg.probes.model_dump(), data], [probes_dir / "probe_sweep.csv"],
                          lambda: stages.probes(cfg, specs, pairing, items, traces, out, probes_dir, progress))

    steering_dir = out / "steering"
    if cfg.steering.enabled:
        book.run("steering", [cfg.steering.model_dump(), cfg.behaviour.n_boot, probes_key],
                 [steering_dir / "steering_summary.csv"],
                 lambda: stages.steering(cfg, specs, pairing, items, traces, out, steering_dir, progress))

    from experiments.report import write_report

    start = time.perf_counter()
    summary = write_report(cfg, out, book.timings, book.reused)
    book.timings["report"] = time.perf_counter() - start
    console.print(f"[bold green]report[/]: {out / 'report.md'}")
    return summary

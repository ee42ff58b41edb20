"""Every artefact path of a run folder, named once (README, "Run folder").

The stages, the report and the CLI commands that write the same files (``handan probe``,
``handan steer``, ``handan behaviour``) take their file names from here or from the modules whose
tables they are (``experiments.behaviour.OUTPUT_FILES``, ``experiments.steering.outputs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from experiments.behaviour.run import OUTPUT_FILES as BEHAVIOUR_FILES
from experiments.steering.outputs import SUMMARY_CSV

PROBE_SWEEP_CSV = "probe_sweep.csv"
PROBE_PREDICTIONS = "oof_predictions.parquet"
PROBE_SKIPPED_CSV = "skipped.csv"
PROBE_COMPARE_CSV = "compare.csv"
PROBE_BEST_SITE_CSV = "best_site.csv"
SLOPE_CONTRAST_CSV = "slope_contrast.csv"


@dataclass(frozen=True)
class RunLayout:
    """The files of the run folder ``root``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    config = property(lambda self: self.root / "config.yaml")
    stages = property(lambda self: self.root / "stages.json")
    items = property(lambda self: self.root / "items.parquet")
    traces = property(lambda self: self.root / "traces.parquet")  # every model's traces
    figures = property(lambda self: self.root / "figures")
    report = property(lambda self: self.root / "report.md")
    summary = property(lambda self: self.root / "summary.json")
    behaviour = property(lambda self: self.root / "behaviour")
    probes = property(lambda self: self.root / "probes")
    steering = property(lambda self: self.root / "steering")

    def model_traces(self, model: str) -> Path:
        return self.root / "traces" / f"{model}.parquet"

    def store(self, model: str) -> Path:
        return self.root / "store" / model

    def behaviour_file(self, key: str) -> Path:
        """``key`` is one of ``experiments.behaviour.OUTPUT_FILES`` (alignment, comparisons, …)."""
        return self.behaviour / BEHAVIOUR_FILES[key]

    probe_sweep = property(lambda self: self.probes / PROBE_SWEEP_CSV)
    probe_skipped = property(lambda self: self.probes / PROBE_SKIPPED_CSV)
    probe_compare = property(lambda self: self.probes / PROBE_COMPARE_CSV)
    probe_best_site = property(lambda self: self.probes / PROBE_BEST_SITE_CSV)
    steering_summary = property(lambda self: self.steering / SUMMARY_CSV)
    slope_contrast = property(lambda self: self.steering / SLOPE_CONTRAST_CSV)

    def direction(self, model: str, name: str) -> Path:
        return self.steering / "directions" / f"{model}__{name}.safetensors"

    def steering_run(self, model: str, condition: str) -> Path:
        return self.steering / "runs" / model / condition

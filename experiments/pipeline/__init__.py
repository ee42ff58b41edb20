"""A whole study from one config: config (every run setting and default), layout (every artefact
path), stages (items → traces + store → behaviour / probes / steering), runner (stage
bookkeeping and reuse), report (``report.md`` + ``summary.json`` from the run's own files)."""

from experiments.pipeline.config import RunConfig
from experiments.pipeline.layout import RunLayout
from experiments.pipeline.runner import run_pipeline

__all__ = ["RunConfig", "RunLayout", "run_pipeline"]

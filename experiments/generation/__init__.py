"""Traces: Items × model → the Traces table (and the activation store), resumable.

- ``config``: ``GenerationSettings`` (what a user sets) → ``GenerationConfig`` (what runs);
- ``traces``: ``generate_traces`` (generation with capture, accounting, grading);
- ``tracefile``: the traces parquet on disk (atomic writes, settings in its metadata).

Only the settings are imported here, so the CLI can read their defaults without pandas or torch.
"""

from experiments.generation.config import GenerationConfig, GenerationSettings

__all__ = ["GenerationConfig", "GenerationSettings"]

"""Traces: Items × model → the Traces table (and the activation store), resumable.

- ``config``: ``GenerationSettings`` (what a user sets) → ``GenerationConfig`` (what runs);
- ``traces``: ``generate_traces`` (generation with capture, accounting, grading);
- ``tracefile``: the traces parquet on disk (atomic writes, settings in its metadata).
"""
from experiments.generation.config import GenerationConfig, GenerationSettings
from experiments.generation.traces import generate_traces

__all__ = ["GenerationConfig", "GenerationSettings", "generate_traces"]

"""Same seed → same bytes: two runs of the demo pipeline with the same seed, in two folders,
write identical files — every CSV, the traces, the activation stores (shards, index, manifest),
the steering runs and directions, the report — except, each for its stated reason:

- clock readings: stages.json's and summary.json's wall times, the report's stage-timing table and
  each store manifest's ``created`` time (provenance, kept on purpose);
- the run folder's own path: config.yaml's ``out`` and the report's "Reproduce" command;
- figures (.png, .svg): matplotlib writes a date into SVG metadata, and every figure is drawn from
  the tables compared here.

A reduced run of the shipped organism (the fast demo's settings, one seed's triple, 12 items per
task): 70-85 s on 2 cores, so slow."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from experiments.cli import app
from experiments.pipeline.config import DEMO_CONFIG, FAST, deep_merge

pytestmark = pytest.mark.slow
#: compared below without their clock readings and run-folder paths
NORMALISED = {"stages.json", "summary.json", "report.md", "config.yaml", "manifest.json"}
FIGURES = {".png", ".svg"}


def _run(tmp_path: Path, name: str) -> Path:
    raw = deep_merge(yaml.safe_load(DEMO_CONFIG.read_text()), FAST)
    raw |= {
        "out": str(tmp_path / name),
        "models": ["organism-teacher", "organism-student", "organism-baseline"],
        "max_items_per_task": 12,
        "generation": {**raw["generation"], "samples": 1},
        "probes": {**raw["probes"], "cv": 3, "n_permutations": 5, "n_boot": 20},
        "steering": {**raw["steering"], "n_calibration": 1, "calibration_items": 8, "max_items": 6},
    }
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 0, result.output
    return tmp_path / name


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix not in FIGURES and p.name not in NORMALISED
    }


def _normalised(root: Path, rel: str):
    """The file ``rel`` of run ``root`` without its clock readings and without ``root`` itself."""
    text = (root / rel).read_text().replace(str(root), "OUT")
    if rel == "report.md":  # the stage-timing table: | stage | seconds | ran/reused |
        return [
            ln for ln in text.splitlines() if not re.fullmatch(r"\| \w+ \| [\d.]+ \| \w+ \|", ln)
        ]
    data = yaml.safe_load(text) if rel == "config.yaml" else json.loads(text)
    if rel == "stages.json":
        return {stage: {k: v for k, v in r.items() if k != "seconds"} for stage, r in data.items()}
    for key in ("timings", "created"):  # summary.json, manifest.json
        data.pop(key, None)
    return data


@pytest.fixture
def one_thread():
    """One CPU thread, as CI runs (the machine is shared); restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_same_seed_gives_the_same_bytes(tmp_path, one_thread):
    first, second = _run(tmp_path, "a"), _run(tmp_path, "b")
    a, b = _files(first), _files(second)
    assert set(a) == set(b)
    kinds = {Path(k).suffix for k in a}
    assert {".csv", ".parquet", ".safetensors", ".json"} <= kinds  # the store and tables are here
    assert any(k.startswith("store/") and k.endswith(".safetensors") for k in a)
    differ = sorted(k for k in a if a[k] != b[k])
    assert differ == [], f"{len(differ)} of {len(a)} files differ: {differ[:20]}"
    normalised = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.name in NORMALISED)
    assert {"config.yaml", "report.md", "stages.json", "summary.json"} <= set(normalised)
    assert sum(rel.endswith("manifest.json") for rel in normalised) >= 3  # one per store
    for rel in normalised:
        assert _normalised(first, rel) == _normalised(second, rel), rel

"""The demo pipeline on the shipped organism, in a reduced setting: every artefact of the layout."""

import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from experiments.cli import app
from experiments.models.organism.task import TASKS
from experiments.pipeline.config import DEMO_CONFIG

pytestmark = pytest.mark.slow


def test_reduced_demo_produces_every_artefact(tmp_path, data_dir):
    raw = yaml.safe_load(DEMO_CONFIG.read_text())
    raw |= {
        "out": str(tmp_path / "demo"),
        "data_dir": str(data_dir),
        "max_items_per_task": 40,
        "generation": {"samples": 1, "batch_size": 64},
        "behaviour": {"n_boot": 100},
        "probes": {
            "targets": ["human_rt", "reasoning_tokens"],
            "cv": 3,
            "n_permutations": 5,
            "n_boot": 50,
        },
        "steering": {"alphas": [-0.5, 0.0, 0.5], "n_random": 1, "samples": 1},
    }
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "demo"
    for rel in [
        "items.parquet",
        "traces.parquet",
        "store/organism-teacher/index.parquet",
        "behaviour/alignment.csv",
        "behaviour/comparisons.csv",
        "behaviour/transfer.csv",
        "probes/probe_sweep.csv",
        "probes/compare.csv",
        "steering/steering.csv",
        "steering/steering_summary.csv",
        "steering/directions/organism-teacher__reasoning_tokens.safetensors",
        "figures/cost_vs_human.png",
        "figures/steering_dose_response.png",
        "report.md",
        "summary.json",
    ]:
        assert (out / rel).exists(), rel
    items = pd.read_parquet(out / "items.parquet")
    assert len(items) == 40 + 40 + 16 + 40 + 40 and set(items.task) == set(TASKS)
    traces = pd.read_parquet(out / "traces.parquet")
    teacher = traces[traces.model == "organism-teacher"]
    assert teacher.correct.mean() > 0.8  # the shipped teacher is accurate
    assert teacher.reasoning_tokens.std() > 5  # and its reasoning length varies with the item
    steering = pd.read_csv(out / "steering" / "steering.csv")
    fitted = json.loads(
        __import__("safetensors")
        .safe_open(
            str(out / "steering/directions/organism-teacher__reasoning_tokens.safetensors"), "np"
        )
        .metadata()["handan"]
    )
    assert not set(steering.item_id) & set(fitted["item_ids"])  # steering only on held-out items
    assert fitted["site"] != "resid_post.3"  # never the last layer (see stages._best_site)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_items"] == 176 and set(summary["models"]) == set(traces.model)
    # every model reasons, so every alignment is defined; one triple per shipped seed
    alignment = pd.read_csv(out / "behaviour" / "alignment.csv")
    assert alignment[alignment.level.isin(["mean", "cross"])].r.notna().all()
    assert len(summary["seeds"]["triples"]) == 3
    report = (out / "report.md").read_text()
    assert report.index("## In brief") < report.index("## Seeds") < report.index("## Behaviour")

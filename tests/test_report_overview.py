"""The report's first screen and example traces on a hand-made run folder: the planted numbers
and the planted easiest / hardest items and shortest / longest samples are the ones shown."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.pipeline.config import RunConfig
from experiments.pipeline.layout import RunLayout
from experiments.pipeline.report.overview import brief, example_traces
from experiments.pipeline.report.seeds import seeds_summary


@pytest.fixture
def run(tmp_path):
    layout = RunLayout(tmp_path)
    items = pd.DataFrame(
        {
            "item_id": ["a1", "a2", "a3", "r1"],
            "task": ["add", "add", "add", "rel"],
            "prompt": ["p1", "p2", "p3", "q1"],
            "answer": ["1", "2", "3", "true"],
            "human_rt_s": [4.0, 2.0, 9.0, 30.0],
        }
    )
    items.to_parquet(layout.items)
    rows = []
    for model in ("T", "S", "B"):
        for item in items["item_id"]:
            for sample, tokens in enumerate((3, 11)):
                rows.append(
                    dict(
                        model=model,
                        item_id=item,
                        sample=sample,
                        reasoning_tokens=tokens + (item == "a3"),
                        correct=sample == 0,
                        text=f"{model}-{item}-{tokens}",
                    )
                )
    pd.DataFrame(rows).to_parquet(layout.traces)
    layout.behaviour.mkdir()
    pd.DataFrame(
        [
            dict(
                student="S",
                baseline="B",
                task="__pooled__",
                acc_student=0.4,
                acc_baseline=0.6,
                p_mcnemar=0.012,
            )
        ]
    ).to_csv(layout.behaviour_file("transfer"), index=False)
    return layout


def _seeds(run, rbar: dict[str, float], traces: pd.DataFrame) -> dict:
    rows = []
    for m, r in rbar.items():
        rows.append(dict(model=m, task="__mean__", level="mean", r=r, r_lo=r - 0.1, r_hi=r + 0.1))
        rows.append(dict(model=m, task="__all__", level="cross", r=r + 0.2, r_lo=0, r_hi=1))
        for task, shift in (("add", 0.1), ("rel", -0.2)):
            rows.append(dict(model=m, task=task, level="within", r=r + shift, r_lo=0, r_hi=1))
    alignment = pd.DataFrame(rows)
    alignment.to_csv(run.behaviour_file("alignment"), index=False)
    return seeds_summary([{"teacher": "T", "student": "S", "baseline": "B"}], alignment, traces)


def test_brief_states_items_models_and_planted_results(run):
    traces = pd.read_parquet(run.traces)
    seeds = _seeds(run, {"T": 0.61, "S": 0.05, "B": 0.33}, traces)
    probes = {"T": {"reasoning_tokens": {"score": 0.81, "score_lo": 0.7, "score_hi": 0.9}}}
    steering = {
        "S": {"reasoning_tokens": {"slope": -0.12, "lo": -0.3, "hi": 0.06, "alpha_max": 0.5}}
    }
    cfg = RunConfig(datasets=["x"], models=["T", "S", "B"])
    text = "\n".join(brief(cfg, run, seeds, probes, steering))
    assert text.startswith("## In brief")
    assert "4 items people solved, in 2 tasks (add 3, rel 1)" in text and "2 samples" in text
    assert "T → S ← B" in text
    assert "**teachers**: reasoning length tracks human solving time" in text
    assert "T 0.61 [0.51, 0.71]" in text
    assert "mean over these models: add 0.71, rel 0.41; cross-task r over task means 0.81." in text
    assert (
        "**students**: reasoning length reliably tracks human solving time in 0 of 1 models" in text
    )
    assert "one pair: no test over pairs" in text  # a single triple has no across-pairs test
    assert "S 0.40 vs B 0.60 (McNemar p = 0.012)" in text
    assert "T 0.81 [0.70, 0.90]" in text and "S -0.12 [-0.30, 0.06] (α ≤ 0.5)" in text


def test_example_traces_show_the_shortest_on_the_easiest_and_the_longest_on_the_hardest(run):
    text = "\n".join(example_traces(run))
    assert "Task add. Easy item `a2` (people: 2.0 s), hard item `a3` (people: 9.0 s)" in text
    for model in ("T", "S", "B"):
        assert f"{model}-a2-3" in text and f"{model}-a3-11" in text
        assert f"{model}-a2-11" not in text and f"{model}-a3-3" not in text
    assert "easy item, its shortest sample: 3 reasoning tokens, correct" in text
    assert "hard item, its longest sample: 12 reasoning tokens, wrong" in text

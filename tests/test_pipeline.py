"""`handan run` end to end on tiny saved models (random weights): every artefact, resumable,
report numbers equal to the CSVs."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from safetensors import safe_open
from tiny import char_tokenizer, tiny_model

from experiments.generation.tracefile import read_traces_meta
from experiments.pipeline import RunConfig, RunLayout, run_pipeline
from experiments.pipeline.stages import _best_site

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    tok = char_tokenizer()
    specs = []
    for role, seed in [("teacher", 0), ("student", 1), ("baseline", 2)]:
        folder = root / role
        model = tiny_model("qwen2", vocab=len(tok), seed=seed)
        with __import__("torch").no_grad():  # make EOS reachable so traces end at varied lengths
            model.lm_head.weight[1] = model.lm_head.weight.mean(0) * 20
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        spec = dict(
            name=f"tiny-{role}",
            source=str(folder),
            role=role,
            dtype="float32",
            template_kwargs={"think": role != "baseline"},
            sampling={"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 12},
        )
        if role == "baseline":
            spec |= {"think_open": None, "think_close": None}
        (root / f"{role}.yaml").write_text(yaml.safe_dump(spec))
        specs.append(str(root / f"{role}.yaml"))
    rng = np.random.default_rng(0)
    items = pd.DataFrame(
        {
            "item_id": [f"q{i}" for i in range(24)],
            "task": ["a", "b"] * 12,
            "prompt": [("x" * (1 + i % 7)) + "?" for i in range(24)],
            "answer": "1",
            "human_rt_s": rng.uniform(1, 9, 24),
            "feat_len": [1 + i % 7 for i in range(24)],
        }
    )
    items.to_csv(root / "items.csv", index=False)
    cfg = dict(
        name="tiny",
        out=str(root / "out"),
        datasets=[str(root / "items.csv")],
        models=specs,
        device="cpu",
        generation={"samples": 2, "batch_size": 16},
        record={"sites": "resid_post.*", "positions": ["prompt_end", "step_4"]},
        behaviour={"n_boot": 100},
        probes={
            "targets": ["human_rt", "reasoning_tokens"],
            "cv": 3,
            "n_permutations": 5,
            "n_boot": 50,
            "n_splits": 3,
            "depths": [0.5],
        },
        steering={"enabled": False},
    )
    return root, cfg


def test_run_writes_every_artefact_and_report_matches_csvs(setup):
    root, cfg = setup
    summary = run_pipeline(RunConfig.model_validate(cfg), progress=False)
    out = root / "out"
    for rel in [
        "items.parquet",
        "traces.parquet",
        "store/tiny-teacher/manifest.json",
        "behaviour/alignment.csv",
        "behaviour/transfer.csv",
        "behaviour/inflation.csv",
        "probes/probe_sweep.csv",
        "report.md",
        "summary.json",
        "config.yaml",
    ]:
        assert (out / rel).exists(), rel
    traces = pd.read_parquet(out / "traces.parquet")
    assert len(traces) == 3 * 24 * 2 and set(traces.model) == {
        "tiny-teacher",
        "tiny-student",
        "tiny-baseline",
    }
    # report numbers come from the CSVs
    al = pd.read_csv(out / "behaviour" / "alignment.csv")
    row = al[(al.model == "tiny-teacher") & (al.level == "within") & (al.task == "a")].iloc[0]
    assert summary["alignment"]["tiny-teacher"]["within:a"] == pytest.approx(row.r, abs=1e-4)
    report = (out / "report.md").read_text()
    assert f"{row.r:.2f} [{row.r_lo:.2f}, {row.r_hi:.2f}]" in report
    best = pd.read_csv(out / "probes" / "best_site.csv")  # the selection-adjusted best site
    best = best[(best.model == "tiny-teacher") & (best.target == "human_rt")].iloc[0]
    assert summary["probes"]["tiny-teacher"]["human_rt"]["score"] == pytest.approx(
        best.score, abs=1e-4
    )
    assert f"{best.score:.2f} [{best.score_lo:.2f}, {best.score_hi:.2f}]" in report
    assert best.n_splits == 3  # probes.n_splits and probes.depths reach the estimators
    cmp_ = pd.read_csv(out / "probes" / "compare.csv")
    assert (cmp_.n_splits == 3).all()
    assert sorted(cmp_.comparison.unique()) == ["best_layer", "depth"]
    assert set(cmp_.loc[cmp_.comparison == "depth", "depth"]) == {0.5}
    assert json.loads((out / "summary.json").read_text())["n_items"] == 24
    acc = traces.groupby("model")["correct"].mean()
    assert f"| tiny-teacher | 48 | {acc['tiny-teacher']:.1%} |" in report


def test_second_run_reuses_completed_stages(setup):
    root, cfg = setup
    before = (root / "out" / "traces.parquet").read_bytes()
    run_pipeline(RunConfig.model_validate(cfg), progress=False)
    stages = json.loads((root / "out" / "stages.json").read_text())
    assert set(stages) >= {"items", "generation", "behaviour", "probes"}
    assert (root / "out" / "traces.parquet").read_bytes() == before
    report = (root / "out" / "report.md").read_text()
    seconds = {k: v["seconds"] for k, v in stages.items()}
    assert f"| behaviour | {seconds['behaviour']:.1f} | reused |" in report
    assert f"| probes | {seconds['probes']:.1f} | reused |" in report
    assert (
        f"| generation | {seconds['generation']:.1f} | ran |" in report
    )  # resumed: nothing left to do


def test_a_deleted_probe_output_reruns_the_probe_stage(setup):
    """best_site.csv and the head stores are probe outputs: deleting one reruns the stage."""
    root, cfg = setup
    out = root / "out"
    assert _run(cfg)["probes"] == "reused"
    (out / "probes" / "best_site.csv").unlink()
    assert _run(cfg)["probes"] == "ran"
    heads = out / "store_heads"
    assert sorted(p.name for p in heads.iterdir()) == ["tiny-student", "tiny-teacher"]
    shutil.rmtree(heads)
    assert _run(cfg)["probes"] == "ran" and (heads / "tiny-teacher" / "manifest.json").exists()


def _run(cfg: dict, **changes) -> dict[str, str]:
    """Run the pipeline on ``cfg`` updated by ``changes``; returns stage -> "ran" | "reused"."""
    run_pipeline(RunConfig.model_validate(cfg | changes), progress=False)
    report = (Path(changes.get("out", cfg["out"])) / "report.md").read_text()
    rows = [
        line.split(" | ")
        for line in report.split("## Stage timings")[1].splitlines()
        if line.startswith("| ")
    ]
    return {cells[0][2:]: cells[2].rstrip(" |") for cells in rows[1:]}


def _copy_run(root, name: str) -> str:
    """A copy of the module's completed run (generation then only resumes)."""
    shutil.copytree(root / "out", root / name)
    return str(root / name)


def test_narrowed_tasks_leave_the_other_items_out_of_every_table(setup):
    root, cfg = setup
    out = Path(_copy_run(root, "narrow"))
    _run(cfg, out=str(out), tasks=["a"])
    traces = pd.read_parquet(out / "traces.parquet")
    assert set(traces.task) == {"a"} and len(traces) == 3 * 12 * 2
    assert (
        len(pd.read_parquet(out / "traces" / "tiny-teacher.parquet")) == 48
    )  # the file keeps task b
    assert "| tiny-teacher | 24 |" in (out / "report.md").read_text()
    assert not (pd.read_csv(out / "behaviour" / "exclusions.csv")["stage"] == "traces").any()
    assert set(pd.read_csv(out / "behaviour" / "item_costs.csv").task) == {"a"}


def test_items_edited_in_place_rerun_behaviour_and_probes(setup):
    root, cfg = setup
    out = Path(_copy_run(root, "rt"))
    items = pd.read_csv(root / "items.csv")
    items.to_csv(root / "items_rt.csv", index=False)
    cfg = cfg | {"out": str(out), "datasets": [str(root / "items_rt.csv")]}
    assert _run(cfg) | {"report": ""} == {
        "items": "ran",
        "generation": "ran",
        "behaviour": "reused",
        "probes": "reused",
        "report": "",
    }  # same content, other path
    corrected = items.assign(human_rt_s=np.random.default_rng(7).uniform(1, 9, len(items)))
    corrected.to_csv(root / "items_rt.csv", index=False)
    stages = _run(cfg)
    assert stages["behaviour"] == stages["probes"] == "ran"
    costs = (
        pd.read_csv(out / "behaviour" / "item_costs.csv")
        .query("model == 'tiny-teacher'")
        .set_index("item_id")
    )
    rt = corrected.set_index("item_id").loc[costs.index, "human_rt_s"]
    np.testing.assert_allclose(costs["human_cost"], np.log(rt))


def test_run_without_a_baseline_compares_teacher_and_student_only(setup):
    root, cfg = setup
    out = Path(_copy_run(root, "pair"))
    _run(cfg, out=str(out), models=cfg["models"][:2])
    comparisons = pd.read_csv(out / "behaviour" / "comparisons.csv")
    assert set(zip(comparisons.model_a, comparisons.model_b)) == {("tiny-teacher", "tiny-student")}
    assert pd.read_csv(out / "behaviour" / "transfer.csv").empty
    inflation = pd.read_csv(out / "behaviour" / "inflation.csv")
    assert set(zip(inflation.student, inflation.reference)) == {("tiny-student", "tiny-teacher")}
    # two teachers: the roles do not pair, and the error (before any generation) names the fix
    second = yaml.safe_load((root / "teacher.yaml").read_text()) | {"name": "tiny-teacher2"}
    (root / "teacher2.yaml").write_text(yaml.safe_dump(second))
    with pytest.raises(ValueError, match="`pairs:` in a run config"):
        _run(
            cfg,
            out=str(root / "two_teachers"),
            models=[*cfg["models"], str(root / "teacher2.yaml")],
        )
    assert not (root / "two_teachers" / "traces").exists()


def test_steering_stage_reruns_exactly_when_its_inputs_change(setup):
    root, cfg = setup
    pairs = root / "PAIRS.yaml"
    pairs.write_text(
        yaml.safe_dump(
            {
                "triples": [
                    {
                        "teacher": "tiny-teacher",
                        "student": "tiny-student",
                        "baseline": "tiny-baseline",
                    }
                ]
            }
        )
    )
    out = root / "steer"
    cfg = cfg | {
        "out": str(out),
        "pairs": str(pairs),
        "generation": {"samples": 2, "batch_size": 16, "temperature": 0.9, "top_p": 0.95},
        "steering": {
            "alphas": [-1.0, 0.0, 1.0],
            "n_random": 1,
            "samples": 1,
            "target": "reasoning_tokens",
            "control_target": "human_rt",
        },
    }

    def reran() -> set[str]:
        stages = _run(cfg)
        meta = safe_open(
            str(out / "steering/directions/tiny-teacher__reasoning_tokens.safetensors"), "np"
        ).metadata()
        assert json.loads(meta["handan"])["site"] == _best_site(
            RunLayout(out), "tiny-teacher", "reasoning_tokens", "prompt_end"
        )
        return {k for k in ("behaviour", "probes", "steering") if stages[k] == "ran"}

    assert reran() == {"behaviour", "probes", "steering"}
    # steering samples at the run's temperature / top_p, not the spec's
    unsteered = next(
        (out / "steering" / "runs" / "tiny-teacher").glob("*/runs/_unsteered/alpha=0.parquet")
    )
    assert {k: read_traces_meta(unsteered)[k] for k in ("temperature", "top_p")} == {
        "temperature": 0.9,
        "top_p": 0.95,
    }
    assert set(pd.read_csv(out / "steering" / "slope_contrast.csv").model_a) == {"tiny-teacher"}
    cfg["probes"] = cfg["probes"] | {"cv": 4}  # steering reads the best probe site
    assert reran() == {"probes", "steering"}
    cfg["behaviour"] = {"n_boot": 120}  # steering's bootstrap uses behaviour.n_boot
    assert reran() == {"behaviour", "steering"}
    pairs.write_text(
        yaml.safe_dump(
            {
                "triples": [  # same file, new content
                    {
                        "teacher": "tiny-student",
                        "student": "tiny-teacher",
                        "baseline": "tiny-baseline",
                    }
                ]
            }
        )
    )
    assert reran() == {"behaviour", "probes", "steering"}
    assert set(pd.read_csv(out / "steering" / "slope_contrast.csv").model_a) == {"tiny-student"}
    assert reran() == set()


def test_unknown_steering_model_is_refused_before_generation(setup):
    root, cfg = setup
    with pytest.raises(ValueError, match=r"steering.models names \['nope'\].*'tiny-baseline'"):
        _run(cfg, out=str(root / "bad"), steering={"models": ["nope"]})
    assert not (root / "bad" / "traces").exists()


def test_bad_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="colour"):
        RunConfig.model_validate(
            {"datasets": ["binary"], "models": ["organism-teacher"], "colour": 1}
        )
    with pytest.raises(FileNotFoundError, match="run config"):
        RunConfig.from_yaml(tmp_path / "nope.yaml")

"""`handan run` end to end on tiny saved models (random weights): every artefact, resumable,
report numbers equal to the CSVs."""
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from tiny import char_tokenizer, tiny_model

from experiments.pipeline import RunConfig, run_pipeline

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
        spec = dict(name=f"tiny-{role}", source=str(folder), role=role, dtype="float32",
                    template_kwargs={"think": role != "baseline"},
                    sampling={"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 12})
        if role == "baseline":
            spec |= {"think_open": None, "think_close": None}
        (root / f"{role}.yaml").write_text(yaml.safe_dump(spec))
        specs.append(str(root / f"{role}.yaml"))
    rng = np.random.default_rng(0)
    items = pd.DataFrame({"item_id": [f"q{i}" for i in range(24)], "task": ["a", "b"] * 12,
                          "prompt": [("x" * (1 + i % 7)) + "?" for i in range(24)], "answer": "1",
                          "human_rt_s": rng.uniform(1, 9, 24), "feat_len": [1 + i % 7 for i in range(24)]})
    items.to_csv(root / "items.csv", index=False)
    cfg = dict(name="tiny", out=str(root / "out"), datasets=[str(root / "items.csv")], models=specs,
               device="cpu", generation={"samples": 2, "batch_size": 16},
               record={"sites": "resid_post.*", "positions": ["prompt_end", "step_4"]},
               behaviour={"n_boot": 100}, probes={"targets": ["human_rt", "reasoning_tokens"], "cv": 3,
                                                  "n_permutations": 5, "n_boot": 50},
               steering={"enabled": False})
    return root, cfg


def test_run_writes_every_artefact_and_report_matches_csvs(setup):
    root, cfg = setup
    summary = run_pipeline(RunConfig.model_validate(cfg), progress=False)
    out = root / "out"
    for rel in ["items.parquet", "traces.parquet", "store/tiny-teacher/manifest.json", "behaviour/alignment.csv",
                "behaviour/transfer.csv", "behaviour/inflation.csv", "probes/probe_sweep.csv", "report.md",
                "summary.json", "config.yaml"]:
        assert (out / rel).exists(), rel
    traces = pd.read_parquet(out / "traces.parquet")
    assert len(traces) == 3 * 24 * 2 and set(traces.model) == {"tiny-teacher", "tiny-student", "tiny-baseline"}
    # report numbers come from the CSVs
    al = pd.read_csv(out / "behaviour" / "alignment.csv")
    row = al[(al.model == "tiny-teacher") & (al.level == "within") & (al.task == "a")].iloc[0]
    assert summary["alignment"]["tiny-teacher"]["within:a"] == pytest.approx(row.r, abs=1e-4)
    report = (out / "report.md").read_text()
    assert f"{row.r:.2f} [{row.r_lo:.2f}, {row.r_hi:.2f}]" in report
    sw = pd.read_csv(out / "probes" / "probe_sweep.csv")
    best = sw[(sw.model == "tiny-teacher") & (sw.target == "human_rt") & ~sw.site.str.startswith("baseline:")]
    assert summary["probes"]["tiny-teacher"]["human_rt"]["score"] == pytest.approx(best.score.max(), abs=1e-4)
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
    assert f"| generation | {seconds['generation']:.1f} | ran |" in report  # resumed: nothing left to do


def test_bad_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="colour"):
        RunConfig.model_validate({"datasets": ["binary"], "models": ["organism-teacher"], "colour": 1})
    with pytest.raises(FileNotFoundError, match="run config"):
        RunConfig.from_yaml(tmp_path / "nope.yaml")

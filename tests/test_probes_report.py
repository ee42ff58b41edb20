"""The probes section of the report reads the selection-adjusted best sites and the contrasts,
names the primary endpoint and quotes Holm-adjusted p-values and paired baseline CIs."""

import pandas as pd

from experiments.pipeline.layout import RunLayout
from experiments.pipeline.report.probes import probe_section


def _run(tmp_path):
    run = RunLayout(tmp_path)
    run.probes.mkdir(parents=True)
    pd.DataFrame(
        dict(model=["t"], target=["human_rt"], site=["resid_post.1"], position=["prompt_end"])
    ).assign(score=0.5).to_csv(run.probe_sweep, index=False)
    pd.DataFrame(
        [
            dict(model="t", target="human_rt", site="resid_post.1", position="prompt_end",
                 picked=0.85, score=0.41, score_lo=0.30, score_hi=0.52, baseline="feat_carries",
                 baseline_score=0.30, diff_baseline=0.11, diff_baseline_lo=0.02,
                 diff_baseline_hi=0.20, p_baseline=0.01, n_splits=10, score_raw=0.55,
                 p_fwe=0.0099, p_bh=0.0198, p_baseline_holm=0.02),
            dict(model="s", target="human_rt", site="resid_post.0", position="prompt_end",
                 picked=0.55, score=0.12, score_lo=-0.01, score_hi=0.25, baseline="feat_carries",
                 baseline_score=0.30, diff_baseline=-0.18, diff_baseline_lo=-0.30,
                 diff_baseline_hi=-0.06, p_baseline=0.004, n_splits=10, score_raw=0.2,
                 p_fwe=0.03, p_bh=0.03, p_baseline_holm=0.008),
        ]
    ).to_csv(run.probe_best_site, index=False)  # fmt: skip
    base = dict(model_a="t", model_b="s", target="human_rt", position="prompt_end", n_items=40,
                n_splits=10)  # fmt: skip
    pd.DataFrame(
        [
            base | dict(comparison="best_layer", depth=float("nan"), site_a="resid_post.1",
                        site_b="resid_post.0", score_a=0.41, score_b=0.12, diff=0.29,
                        diff_lo=0.1, diff_hi=0.48, p=0.003, endpoint="primary", p_holm=0.003),
            base | dict(comparison="depth", depth=0.5, site_a="resid_post.2",
                        site_b="resid_post.1", score_a=0.3, score_b=0.2, diff=0.1, diff_lo=-0.1,
                        diff_hi=0.3, p=0.4, endpoint="secondary", p_holm=1.0),
        ]
    ).to_csv(run.probe_compare, index=False)  # fmt: skip
    return run


def test_probe_section_reports_adjusted_scores_multiplicity_and_the_primary_endpoint(tmp_path):
    lines, summary = probe_section(_run(tmp_path))
    text = "\n".join(lines)
    assert "| t | human_rt | resid_post.1 (85%) | 0.41 [0.30, 0.52] | 0.55 | 0.020 |" in text
    assert "feat_carries: 0.30 | 0.11 [0.02, 0.20] | 0.020 |" in text
    assert "`human_rt` is linearly decodable" in text and "beats the trivial baseline" in text
    # s: the CI touches 0, so not decodable, whatever its p
    assert "- **s**: `human_rt` is not reliably decodable" in text
    assert "**Primary probe endpoint**" in text
    assert (
        "| human_rt | t | s | prompt_end | 0.41 | 0.12 | 0.29 [0.10, 0.48] | 0.003 | 0.003 |"
        in text
    )
    assert "| human_rt | t | s | 0.5: resid_post.2 vs resid_post.1 |" in text
    assert "selectivity" not in text and "control" not in text
    assert summary["t"]["human_rt"]["score"] == 0.41 and summary["t"]["human_rt"]["p_bh"] == 0.0198


def test_probe_section_without_best_site_says_to_rerun(tmp_path):
    run = _run(tmp_path)
    run.probe_best_site.unlink()
    lines, summary = probe_section(run)
    assert any("best_site.csv` is missing" in line for line in lines) and summary == {}

"""The README's "Use your own data" example, run as written: trials CSV -> handan data import ->
handan generate (the organism teacher) -> handan behaviour, with no data folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    section = README.read_text().split("## Use your own data", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)


def test_readme_example_runs_and_its_items_match_pandas(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HANDAN_DATA_DIR"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _example()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    trials = pd.read_csv(tmp_path / "trials.csv", dtype=str)
    trials["item_id"] = trials["a"] + "|" + trials["b"]
    trials["correct"] = trials["response"] == trials["sum"]
    rts = trials[trials["correct"] & trials["rt_ms"].notna()]
    # three RTs an item at most: the trimming cannot fire, so the geometric mean of all of them
    expected = np.exp(np.log(rts["rt_ms"].astype(float) / 1000).groupby(rts["item_id"]).mean())
    items = pd.read_csv(tmp_path / "items.csv", dtype={"item_id": str}).set_index("item_id")
    assert len(items) == 4 and (items["task"] == "binary_add").all()
    np.testing.assert_allclose(items["human_rt_s"], expected.loc[items.index], rtol=1e-12)
    np.testing.assert_allclose(
        items["human_accuracy"], trials.groupby("item_id")["correct"].mean().loc[items.index]
    )
    ex = pd.read_csv(tmp_path / "items.exclusions.csv").set_index("reason")["trials"]
    assert (ex["incorrect"], ex["no valid RT"], ex["trimmed"]) == (2, 1, 0)  # as the README says
    alignment = pd.read_csv(tmp_path / "behaviour" / "alignment.csv")
    row = alignment[(alignment["level"] == "within") & (alignment["task"] == "binary_add")]
    assert row["model"].tolist() == ["organism-teacher"] and row["n"].tolist() == [4]
    assert np.isfinite(row["r"]).all()

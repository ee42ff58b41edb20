"""The prepared GPU script (benchmarks/gpu_record.py) runs end to end on the CPU with --tiny."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_record_script_runs_tiny_on_cpu(tmp_path):
    from hooks import ActivationStore

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_record.py"),
            "--tiny",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["preset"]["batch"] == 4 and 0 < summary["plain"]["tokens"] <= 4 * 16
    assert summary["record"]["tokens"] == summary["plain"]["tokens"]  # same seeds, same tokens
    store = ActivationStore(tmp_path / "record-store")
    X, index = store.load("resid_post.1", "step_8")
    assert X.shape == (len(index), 64) and set(index["item_id"]) == {f"b{i:03d}" for i in range(4)}
    assert "capture overhead" in done.stdout and "pre-flight" in done.stdout

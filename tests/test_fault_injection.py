"""Fault injection: SIGKILL `handan generate`, `handan record` and `handan run` at many seeded
random moments, rerun to completion, and require exactly the uninterrupted result.

Each command is killed KILLS times in a chain (start, kill at a random moment, start again, …),
then run to the end. Invariants: the traces table equals the uninterrupted run's (same rows, same
values, no duplicate or missing key); the store holds the same index and the same bytes of every
vector; no temporary file is left; `handan store info` succeeds; a pipeline run's CSVs equal the
uninterrupted run's. The kill count and the invariants checked are printed at the end of the
pytest run (the `say` fixture of conftest.py), also under -q.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

KILLS = 20
ROOT = Path(__file__).resolve().parents[1]
HANDAN = [sys.executable, "-m", "experiments.cli"]


def _env():
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


@pytest.fixture(scope="module")
def items_file(tmp_path_factory):
    from experiments.models.organism.task import organism_items

    items = organism_items().groupby("task").head(6)[["item_id", "task", "prompt", "answer"]]
    path = tmp_path_factory.mktemp("items") / "items.parquet"
    items.to_parquet(path)
    return path


def _run(args, cwd):
    return subprocess.run(HANDAN + args, cwd=cwd, env=_env(), capture_output=True, text=True)


def _kill_chain(args, cwd, seed, span):
    """Start ``args`` again and again, each start killed with SIGKILL after a random share of
    ``span`` seconds (the uninterrupted run's wall time), until KILLS kills landed mid-run (at most
    3 × KILLS starts: a start that finishes first counts as a start, not a kill)."""
    rng, landed, starts = random.Random(seed), 0, 0
    while landed < KILLS and starts < 3 * KILLS:
        starts += 1
        proc = subprocess.Popen(
            HANDAN + args, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.05, 1.0) * span)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            landed += 1
        proc.wait()
    return landed


def _timed(args, cwd):
    start = time.perf_counter()
    result = _run(args, cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    return time.perf_counter() - start


def _traces(path: Path) -> pd.DataFrame:
    from experiments.contracts import read_table

    table = read_table(path).sort_values(["item_id", "sample"]).reset_index(drop=True)
    assert not table.duplicated(["model", "item_id", "sample"]).any()
    return table


def _store(path: Path):
    from hooks.store import ActivationStore

    store = ActivationStore(path)
    out = {}
    for site in store.sites:
        for position in store.positions:
            X, index = store.load(site, position)
            order = np.lexsort((index["sample"].to_numpy(), index["item_id"].to_numpy()))
            out[(site, position)] = (
                X[order].tobytes(),
                index.iloc[order][["item_id", "sample", "token_index"]].reset_index(drop=True),
            )
    return out


def _no_tmp(folder: Path):
    assert not [p for p in folder.rglob("*.tmp")], "a temporary file was left behind"


GEN = [
    "--model",
    "organism-teacher",
    "--max-new-tokens",
    "60",
    "--batch-size",
    "4",
    "--samples",
    "2",
    "--temperature",
    "1.0",
]


@pytest.mark.parametrize("command", ["generate", "record", "forced"])
def test_sigkill_anywhere_then_resume_equals_an_uninterrupted_run(
    items_file, tmp_path, command, say
):
    """``forced``: `handan record --from-traces` (teacher-forced capture over a traces file)."""
    out = "traces.parquet" if command == "generate" else "store"
    positions = ["--positions", "prompt_end,step_8,think_close"]
    source = tmp_path / "source.parquet"
    if command == "forced":
        _timed(["generate", *GEN, "--items", str(items_file), "--out", str(source)], ROOT)

    def args(folder):
        if command == "forced":
            forced = ["record", "--from-traces", str(source), *GEN[:2], *positions]
            return [*forced, "--out", str(folder / out)]
        extra = positions if command == "record" else []
        return [command, *GEN, "--items", str(items_file), "--out", str(folder / out), *extra]

    clean, killed = tmp_path / "clean", tmp_path / "killed"
    clean.mkdir(), killed.mkdir()
    span = _timed(args(clean), ROOT)
    seed = {"generate": 1, "record": 2, "forced": 3}[command]
    landed = _kill_chain(args(killed), ROOT, seed=seed, span=span)
    _timed(args(killed), ROOT)
    checked = ["no temporary file"]
    if command != "forced":  # forced capture writes no traces: it reads them
        traces = {"generate": out, "record": f"{out}/traces.parquet"}[command]
        pd.testing.assert_frame_equal(_traces(killed / traces), _traces(clean / traces))
        checked += ["traces equal", "no duplicate key"]
    if command != "generate":
        a, b = _store(killed / out), _store(clean / out)
        assert a.keys() == b.keys()
        for key in a:
            assert a[key][0] == b[key][0], f"vector bytes differ at {key}"
            pd.testing.assert_frame_equal(a[key][1], b[key][1])
        info = _run(["store", "info", str(killed / out)], ROOT)
        assert info.returncode == 0, info.stderr
        checked += ["store vectors byte-identical", "store index equal", "store info clean"]
    _no_tmp(killed)
    say(
        f"fault injection, {command}: {landed} SIGKILLs landed mid-run (span {span:.1f} s); "
        "checked: " + ", ".join(checked)
    )
    assert landed == KILLS  # the test really interrupted the command KILLS times


def test_sigkill_during_a_pipeline_run_then_rerun_equals_an_uninterrupted_run(
    items_file, tmp_path, say
):
    import yaml

    cfg = {
        "name": "fault",
        "datasets": [str(items_file)],
        "device": "cpu",
        "models": ["organism-teacher", "organism-student", "organism-baseline"],
        "generation": {"samples": 2, "batch_size": 8, "max_new_tokens": 60},
        "behaviour": {"n_boot": 50},
        "probes": {"targets": ["human_rt"], "n_permutations": 5, "n_boot": 20},
        "steering": {"enabled": False},
    }
    # the items file has no human RTs; give it some so behaviour and probes have a target
    items = pd.read_parquet(items_file)
    items["human_rt_s"] = 1.0 + np.arange(len(items)) % 5
    items.to_parquet(tmp_path / "items.parquet")
    cfg["datasets"] = [str(tmp_path / "items.parquet")]
    for name in ("clean", "killed"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**cfg, "out": str(tmp_path / name)}))
    span = _timed(["run", str(tmp_path / "clean.yaml")], ROOT)
    landed = _kill_chain(["run", str(tmp_path / "killed.yaml")], ROOT, seed=7, span=span)
    _timed(["run", str(tmp_path / "killed.yaml")], ROOT)
    clean_csvs = sorted(
        p.relative_to(tmp_path / "clean") for p in (tmp_path / "clean").rglob("*.csv")
    )
    assert clean_csvs
    for rel in clean_csvs:
        a, b = tmp_path / "killed" / rel, tmp_path / "clean" / rel
        pd.testing.assert_frame_equal(pd.read_csv(a), pd.read_csv(b), obj=str(rel))
    _no_tmp(tmp_path / "killed")
    say(
        f"fault injection, run: {landed} SIGKILLs landed mid-run (span {span:.1f} s); checked: "
        f"{len(clean_csvs)} CSVs equal, no temporary file"
    )
    assert landed == KILLS

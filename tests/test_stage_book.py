"""Stage bookkeeping (stages.json): a killed stage is never reused; a corrupt file is one clear error."""

from __future__ import annotations

import json

import pytest

from experiments.errors import InputError
from experiments.pipeline.runner import Stages


def _stage(path, text):
    def fn():
        path.write_text(text)

    return fn


def test_a_stage_killed_midway_is_rerun_even_with_its_old_settings(tmp_path):
    out = tmp_path / "result.csv"
    book = Stages(tmp_path / "stages.json")
    book.run("behaviour", {"n_boot": 10}, [out], _stage(out, "A"))  # settings A, completes

    def killed():  # settings B: writes its output, then dies before finishing
        out.write_text("B-partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Stages(tmp_path / "stages.json").run("behaviour", {"n_boot": 20}, [out], killed)
    assert "behaviour" not in json.loads((tmp_path / "stages.json").read_text())

    rerun = Stages(tmp_path / "stages.json")  # settings A again: the file on disk is B's, not A's
    rerun.run("behaviour", {"n_boot": 10}, [out], _stage(out, "A"))
    assert rerun.reused == set() and out.read_text() == "A"


def test_an_unchanged_finished_stage_is_reused(tmp_path):
    out = tmp_path / "r.csv"
    Stages(tmp_path / "stages.json").run("probes", [1], [out], _stage(out, "x"))
    again = Stages(tmp_path / "stages.json")
    again.run("probes", [1], [out], lambda: pytest.fail("reran a current stage"))
    assert again.reused == {"probes"}
    assert not list(tmp_path.glob("*.tmp"))


def test_corrupt_stages_json_names_the_file_and_the_fix(tmp_path):
    (tmp_path / "stages.json").write_text("{not json")
    with pytest.raises(InputError, match=r"stages\.json is not valid JSON.*delete it and rerun"):
        Stages(tmp_path / "stages.json")


@pytest.mark.parametrize(
    "data,problem",
    [
        (b"\xff\xfe\x00garbage", "is not valid JSON"),  # not even text
        (b"[1, 2]", "is not a JSON object of stage records"),
        (b'{"behaviour": "done"}', "is not a JSON object of stage records"),
        (b'{"behaviour": {"hash": "x"}}', "is not a JSON object of stage records"),
    ],
)
def test_a_stages_json_that_is_not_stage_records_names_the_file_and_the_fix(
    tmp_path, data, problem
):
    """Before: undecodable bytes gave a bare UnicodeDecodeError, and valid JSON of another shape
    an AttributeError / KeyError at the first stage, naming no file."""
    (tmp_path / "stages.json").write_bytes(data)
    with pytest.raises(InputError, match=rf"stages\.json {problem}.*delete it and rerun"):
        Stages(tmp_path / "stages.json").run("behaviour", [1], [], lambda: None)


def test_the_timing_a_run_reports_is_the_one_stages_json_keeps(tmp_path, monkeypatch):
    """1.3456 s: unrounded, this run's report said 1.3 while the next run's (from stages.json's
    1.35) said 1.4 — a pipeline test failed on exactly that."""
    ticks = iter([10.0, 11.3456])
    monkeypatch.setattr("experiments.pipeline.runner.time.perf_counter", lambda: next(ticks))
    out = tmp_path / "r.csv"
    book = Stages(tmp_path / "stages.json")
    book.run("generation", [1], [out], _stage(out, "x"))
    kept = json.loads((tmp_path / "stages.json").read_text())["generation"]["seconds"]
    assert book.timings["generation"] == kept == 1.35

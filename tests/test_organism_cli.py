"""`handan organism train` / `info` through typer's CliRunner."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from experiments.cli import organism as cli_organism


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()
    cli_organism.register(app)
    return app


def test_info_on_an_empty_folder_names_the_training_command(app, tmp_path):
    result = CliRunner().invoke(app, ["organism", "info", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "handan organism train" in result.output


@pytest.mark.parametrize("seed", [0, 2])
def test_info_describes_each_shipped_seed(app, seed):
    result = CliRunner().invoke(
        app, ["organism", "info", "--seed", str(seed)], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    for role in ("teacher", "baseline", "student", "teacher_sft"):
        assert role in result.output
    assert f"seed {seed}," in result.output and "acc 4ps" in result.output
    assert "distillation traces kept" in result.output


def test_info_on_a_seed_never_trained_names_the_command(app):
    result = CliRunner().invoke(app, ["organism", "info", "--seed", "97"])
    assert result.exit_code == 2 and "handan organism train --seed 97" in result.output


@pytest.mark.slow
def test_train_fast_then_info(app, tmp_path):
    runner = CliRunner()
    args = ["organism", "train", "--fast", "--seed", "3", "--out", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "student" / "model.safetensors").exists()
    assert "total wall time" in result.output
    info = runner.invoke(app, ["organism", "info", "--dir", str(tmp_path)], env={"COLUMNS": "250"})
    assert info.exit_code == 0 and "seed 3, budget fast" in info.output

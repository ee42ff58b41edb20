"""`handan data ...` through typer's CliRunner on a local app."""

from __future__ import annotations

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from experiments.cli.data import register
from experiments.data import load_items

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_list_shows_every_dataset(app):
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0, result.output
    for text in [
        "game24",
        "1362",
        "binary_sub (136)",
        "relational_carddir (56)",
        "CognitiveComputationLab/cogmods",
        "MIT",
    ]:
        assert text in result.output


def test_export_writes_the_items_table(app, data_dir, tmp_path):
    out = tmp_path / "items.parquet"
    result = runner.invoke(
        app, ["data", "export", "binary", "--out", str(out), "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_parquet(out), load_items("binary", data_dir))


def test_show_summarises_from_env_data_dir(app, data_dir, monkeypatch):
    monkeypatch.setenv("HANDAN_DATA_DIR", str(data_dir))
    result = runner.invoke(app, ["data", "show", "syllogisms"])
    assert result.exit_code == 0, result.output
    items = load_items("syllogisms", data_dir)
    assert f"{items['human_rt_s'].median():.2f}" in result.output
    assert f"{items['human_accuracy'].mean():.3f}" in result.output


def test_fetch_verifies_and_bad_input_exits_2(app, data_dir, tmp_path):
    result = runner.invoke(app, ["data", "fetch", "relational", "--data-dir", str(data_dir)])
    assert result.exit_code == 0 and "3 file(s) verified" in result.output
    result = runner.invoke(app, ["data", "fetch", "nope", "--data-dir", str(data_dir)])
    assert result.exit_code == 2 and "unknown dataset" in result.output
    result = runner.invoke(
        app,
        ["data", "export", "game24", "--out", str(tmp_path / "x.txt"), "--data-dir", str(data_dir)],
    )
    assert result.exit_code == 2 and ".parquet or .csv" in result.output

"""The Items tables shipped in the package: rebuilt from the mirror they are equal, they carry
their provenance and licences, and they load with no data folder and no network."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pandas as pd
import pooch
import pytest
import yaml
from typer.testing import CliRunner

from experiments.cli import app
from experiments.data import DATASETS, embedded, items_from, load_items
from experiments.data.build import build_items

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO_ROOT / "experiments/pipeline/configs/demo.yaml"


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No data folder, an empty download cache, and any download attempt fails the test."""
    monkeypatch.delenv("HANDAN_DATA_DIR", raising=False)
    monkeypatch.setenv("HANDAN_CACHE", str(tmp_path / "empty-cache"))

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(pooch, "retrieve", no_network)


@pytest.mark.parametrize("name", embedded.EMBEDDED)
def test_shipped_tables_equal_a_rebuild_from_the_raw_files(name, data_dir):
    pd.testing.assert_frame_equal(embedded.embedded_items(name), build_items(name, data_dir))


def test_embed_command_rewrites_tables_and_provenance(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(embedded, "FOLDER", tmp_path)
    result = CliRunner().invoke(app, ["data", "embed", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    for name in embedded.EMBEDDED:
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / f"{name}.parquet"),
            pd.read_parquet(REPO_ROOT / "experiments/data/embedded" / f"{name}.parquet"),
        )
    shipped = (REPO_ROOT / "experiments/data/embedded/PROVENANCE.md").read_text()
    assert (tmp_path / "PROVENANCE.md").read_text() == shipped


@pytest.mark.parametrize("name", embedded.EMBEDDED)
def test_demo_datasets_load_offline_from_the_package(name, offline):
    items = load_items(name)
    assert items["task"].value_counts().to_dict() == DATASETS[name].n_items
    pd.testing.assert_frame_equal(items_from(name), items)


def test_every_demo_dataset_ships_in_the_package():
    datasets = yaml.safe_load(DEMO_CONFIG.read_text())["datasets"]
    assert set(datasets) <= set(embedded.EMBEDDED)


def test_a_dataset_that_ships_no_table_still_needs_its_raw_files(offline):
    with pytest.raises(AssertionError, match="tried to download"):
        load_items("game24")


def test_provenance_names_commit_licence_and_every_raw_file():
    text = (embedded.FOLDER / "PROVENANCE.md").read_text()
    licences = (embedded.FOLDER / "LICENSE").read_text()
    for name in embedded.EMBEDDED:
        spec = DATASETS[name]
        assert f"https://github.com/{spec.repo} @ {spec.commit}" in text
        assert spec.licence == "MIT" and f"https://github.com/{spec.repo}" in licences
        for path, sha in spec.files.items():
            assert f"| {sha} | `{path}` |" in text
    assert licences.count("Permission is hereby granted") == len(embedded.EMBEDDED)
    assert "Copyright (c) 2018 Sungjae Cho" in licences
    assert "Copyright (c) 2018 Cognitive Computation Lab" in licences


def test_package_data_ships_every_embedded_file():
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["experiments"]
    files = [p.relative_to(REPO_ROOT / "experiments").as_posix() for p in embedded.FOLDER.iterdir()]
    assert {"data/embedded/binary.parquet", "data/embedded/LICENSE"} <= set(files)
    for rel in files:
        assert any(fnmatch.fnmatch(rel, g) for g in globs), rel
    assert not [f for f in files if f.endswith((".result", ".csv"))]  # no raw trial file ships


def test_a_data_folder_is_read_instead_of_the_shipped_table(data_dir, tmp_path, monkeypatch):
    spec = DATASETS["relational"]
    for path in spec.files:
        (tmp_path / spec.repo / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / spec.repo / path).write_bytes((data_dir / spec.repo / path).read_bytes())
    monkeypatch.setenv("HANDAN_DATA_DIR", str(tmp_path))
    pd.testing.assert_frame_equal(load_items("relational"), embedded.embedded_items("relational"))
    tampered = tmp_path / spec.repo / next(iter(spec.files))
    tampered.write_bytes(tampered.read_bytes() + b"\n")
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_items("relational")

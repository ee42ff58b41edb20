"""Fetching: mirror folders and pooch downloads from a loopback HTTP server, checksums enforced."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest

from experiments.data import DATASETS, load_items
from experiments.data.binary_files import RESULT_DIR
from experiments.data.fetch import fetch

SYL = DATASETS["syllogisms"]
BACKSLASH_FILE = f"{RESULT_DIR}/2019-04-18_14_09_36.28327_1990_1_3_KOREAN HISTORY\\.result"


def _copy(data_dir: Path, spec, path: str, root: Path) -> Path:
    dest = root / spec.repo / path
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data_dir / spec.repo / path, dest)
    return dest


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server on 127.0.0.1 serving ``tmp_path/www``; yields (root, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_urls_point_at_the_pinned_commit_and_encode_odd_names():
    binary = DATASETS["binary"]
    assert len(binary.files) == 180
    assert all(len(sha) == 64 for spec in DATASETS.values() for sha in spec.files.values())
    url = binary.url(BACKSLASH_FILE)
    assert url.startswith(
        f"https://raw.githubusercontent.com/{binary.repo}/{binary.commit}/user_data/"
    )
    assert url.endswith("KOREAN%20HISTORY%5C.result")


def test_mirror_files_are_verified(data_dir):
    files = fetch(SYL, data_dir)
    assert list(files) == list(SYL.files)
    assert files[next(iter(SYL.files))].is_file()


def test_tampered_mirror_file_is_refused_naming_it(data_dir, tmp_path):
    dest = _copy(data_dir, SYL, next(iter(SYL.files)), tmp_path)
    dest.write_bytes(dest.read_bytes().replace(b"12308", b"12309"))
    with pytest.raises(ValueError, match=r"checksum mismatch for .*2021_wiens/data/data\.csv"):
        load_items("syllogisms", tmp_path)


def test_missing_mirror_file_names_path_and_url(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_items("game24", tmp_path)
    assert str(tmp_path / "princeton-nlp/tree-of-thought-llm/src/tot/data/24/24.csv") in str(
        err.value
    )
    assert DATASETS["game24"].url("src/tot/data/24/24.csv") in str(err.value)


def test_missing_data_folder_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_items("game24", tmp_path / "nowhere")


def test_env_var_selects_the_mirror(data_dir, monkeypatch):
    monkeypatch.setenv("HANDAN_DATA_DIR", str(data_dir))
    assert len(load_items("syllogisms")) == 15


def test_unknown_dataset_lists_the_names():
    with pytest.raises(ValueError, match="game24"):
        load_items("nope")


def test_download_from_loopback_server_matches_the_mirror(data_dir, server, tmp_path, monkeypatch):
    root, base = server
    monkeypatch.delenv("HANDAN_DATA_DIR", raising=False)
    monkeypatch.setenv("HANDAN_CACHE", str(tmp_path / "cache"))
    _copy(data_dir, SYL, next(iter(SYL.files)), root)
    spec = dataclasses.replace(SYL, base_url=f"{base}{SYL.repo}/")
    files = fetch(spec)
    assert str(files[next(iter(SYL.files))]).startswith(str(tmp_path / "cache"))
    downloaded = spec.loader(files)
    pd.testing.assert_frame_equal(downloaded, SYL.loader(fetch(SYL, data_dir)))


def test_download_of_a_backslash_name(data_dir, server, tmp_path, monkeypatch):
    root, base = server
    monkeypatch.setenv("HANDAN_CACHE", str(tmp_path / "cache"))
    binary = DATASETS["binary"]
    _copy(data_dir, binary, BACKSLASH_FILE, root)
    spec = dataclasses.replace(
        binary,
        base_url=f"{base}{binary.repo}/",
        files={BACKSLASH_FILE: binary.files[BACKSLASH_FILE]},
    )
    local = fetch(spec)[BACKSLASH_FILE]
    assert local.read_bytes() == (data_dir / binary.repo / BACKSLASH_FILE).read_bytes()


def test_tampered_download_is_refused_and_not_cached(data_dir, server, tmp_path, monkeypatch):
    root, base = server
    cache = tmp_path / "cache"
    monkeypatch.setenv("HANDAN_CACHE", str(cache))
    monkeypatch.delenv("HANDAN_DATA_DIR", raising=False)  # CI sets it; this test downloads
    dest = _copy(data_dir, SYL, next(iter(SYL.files)), root)
    dest.write_bytes(dest.read_bytes() + b"\n")
    spec = dataclasses.replace(SYL, base_url=f"{base}{SYL.repo}/")
    with pytest.raises(ValueError, match=r"checksum mismatch for .*2021_wiens/data/data\.csv"):
        fetch(spec)
    assert not [p for p in cache.rglob("*") if p.is_file()]

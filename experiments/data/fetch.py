"""Local copies of a dataset's files: from a mirror folder (``OWNER/REPO/PATH`` layout) or
downloaded with pooch from the pinned upstream commit into a cache; sha256-checked either way."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pooch

from experiments.data.registry import DatasetSpec
from experiments.errors import InputError, MissingInput

DATA_DIR_ENV = "HANDAN_DATA_DIR"
CACHE_ENV = "HANDAN_CACHE"


def default_data_dir() -> Path | None:
    """The mirror folder named by ``HANDAN_DATA_DIR``, or None (then files are downloaded)."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value) if value else None


def cache_dir() -> Path:
    """Download cache: ``HANDAN_CACHE`` if set, else pooch's per-user cache for ``handan``."""
    value = os.environ.get(CACHE_ENV)
    return Path(value) if value else Path(pooch.os_cache("handan"))


def _from_mirror(spec: DatasetSpec, path: str, sha256: str, data_dir: Path) -> Path:
    local = data_dir / spec.repo / path
    if not local.is_file():
        raise MissingInput(
            f"{local} is missing from the data folder {data_dir}; put the file there (download it "
            f"from {spec.url(path)}) or drop --data-dir / {DATA_DIR_ENV} to download it automatically"
        )
    actual = pooch.file_hash(str(local))
    if actual != sha256:
        raise InputError(
            f"checksum mismatch for {local}: sha256 {actual}, expected {sha256} (file {path} of "
            f"{spec.repo}@{spec.commit[:12]}); replace it with the file from {spec.url(path)}"
        )
    return local


def _cache_path(spec: DatasetSpec, path: str) -> Path:
    return cache_dir() / spec.repo / spec.commit / quote(path, safe="")


def cached(spec: DatasetSpec) -> dict[str, Path] | None:
    """``{upstream path: local file}`` when every file of ``spec`` is in the download cache with
    its sha256 (no network), else None."""
    files = {path: _cache_path(spec, path) for path in spec.files}
    complete = all(
        files[path].is_file() and pooch.file_hash(str(files[path])) == sha
        for path, sha in spec.files.items()
    )
    return files if complete else None


def _download(spec: DatasetSpec, path: str, sha256: str) -> Path:
    local = _cache_path(spec, path)
    try:
        local = pooch.retrieve(
            spec.url(path),
            known_hash=f"sha256:{sha256}",
            fname=local.name,
            path=local.parent,
            progressbar=False,
        )
    except ValueError as err:  # pooch's hash mismatch; it deletes the bad download
        raise InputError(
            f"checksum mismatch for {path} downloaded from {spec.url(path)} (expected sha256 "
            f"{sha256}); the upstream file changed or the download was corrupted — retry, or use a "
            f"verified mirror with --data-dir. ({err})"
        ) from err
    return Path(local)


def fetch(spec: DatasetSpec, data_dir: str | Path | None = None) -> dict[str, Path]:
    """``{upstream path: verified local file}`` for every file of ``spec``. ``data_dir`` None means
    ``HANDAN_DATA_DIR`` if set, else download (a file already in the cache is not downloaded again). Raises FileNotFoundError for a missing mirror file
    and ValueError (naming the file) for a checksum mismatch."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    if root is not None and not root.is_dir():
        raise MissingInput(
            f"data folder {root} does not exist; pass an existing mirror folder "
            f"(layout OWNER/REPO/PATH) or unset {DATA_DIR_ENV} to download"
        )
    return {
        path: _from_mirror(spec, path, sha, root)
        if root is not None
        else _download(spec, path, sha)
        for path, sha in spec.files.items()
    }

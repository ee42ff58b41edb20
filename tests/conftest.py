import functools
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tok():
    """Character-level tokenizer with <think>/</think> (tests/tiny.py)."""
    from tiny import char_tokenizer

    return char_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    """A tiny random-init Qwen2 over ``tok``'s vocabulary."""
    from tiny import tiny_model

    return tiny_model("qwen2", vocab=len(tok))


_NO_DATA = "raw human data not found"
HOW_TO_PROVIDE_DATA = (
    "set HANDAN_DATA_DIR to a mirror folder of the raw human data (layout OWNER/REPO/PATH; .ci/run "
    "uses ../shared/data), or download them once into the cache with `handan data fetch NAME` "
    "for game24, binary, relational and syllogisms"
)


@functools.cache
def _raw_data() -> tuple[str, dict[str, Path] | Path | None]:
    """Where the raw human data are: (description, HANDAN_DATA_DIR's folder, or the verified
    cached files by repo path, or None)."""
    from experiments.data import DATASETS
    from experiments.data.fetch import DATA_DIR_ENV, cache_dir, cached

    value = os.environ.get(DATA_DIR_ENV)
    if value:
        return f"{DATA_DIR_ENV}={value}", Path(value)
    files = {}
    for spec in DATASETS.values():
        found = cached(spec)
        if found is None:
            return "not found", None
        files |= {f"{spec.repo}/{path}": local for path, local in found.items()}
    return f"the download cache {cache_dir()}", files


_SAID = pytest.StashKey[list]()


@pytest.fixture
def say(request):
    """``say(line)``: a line the test measured (e.g. a kill count), printed at the end of the run,
    also under -q."""
    return request.config.stash.setdefault(_SAID, []).append


def pytest_terminal_summary(terminalreporter):
    """Say once, at the end (also under -q), how many tests skipped for want of the raw data, and
    the lines tests said."""
    for line in terminalreporter.config.stash.get(_SAID, []):
        terminalreporter.write_line(line)
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if _NO_DATA in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} test(s) skipped: {_NO_DATA}: {HOW_TO_PROVIDE_DATA}"
        )


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A folder with the raw human data in the mirror layout: ``HANDAN_DATA_DIR``, else links to
    the verified files of the download cache; the test skips (saying how to provide them) when
    neither holds them, and fails when HANDAN_DATA_DIR names no folder."""
    where, found = _raw_data()
    if found is None:
        pytest.skip(_NO_DATA)
    if isinstance(found, Path):
        if not found.is_dir():
            pytest.fail(f"{where} is not a folder; {HOW_TO_PROVIDE_DATA}")
        return found
    mirror = tmp_path_factory.mktemp("mirror")
    for rel, local in found.items():
        (mirror / rel).parent.mkdir(parents=True, exist_ok=True)
        (mirror / rel).symlink_to(local)
    return mirror

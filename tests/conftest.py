import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The offline mirror of the human data (HANDAN_DATA_DIR, else ../shared/data)."""
    path = Path(os.environ.get("HANDAN_DATA_DIR", REPO.parent / "shared" / "data"))
    if not path.exists():
        pytest.skip(f"human data mirror not found at {path}; set HANDAN_DATA_DIR")
    return path

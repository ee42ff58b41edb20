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


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The offline mirror of the human data (HANDAN_DATA_DIR, else ../shared/data)."""
    path = Path(os.environ.get("HANDAN_DATA_DIR", REPO.parent / "shared" / "data"))
    if not path.exists():
        pytest.skip(f"human data mirror not found at {path}; set HANDAN_DATA_DIR")
    return path

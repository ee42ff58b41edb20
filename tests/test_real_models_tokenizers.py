"""Real tokenizer behaviour on tiny random-init models: the special tokens sit at the real
models' ids (tests/real_tokenizers.py) and a forward hook scripts what the model writes, so each
test knows the right count. R1-Distill's pad == eos and ``<think>\\n`` prompt, Llama-3's three EOS
ids, a ``</think>`` written as text, Qwen3's ``enable_thinking`` template, and a templated base
that would run on past its end of turn."""

from __future__ import annotations

import pandas as pd
import pytest
import real_tokenizers as rt

from experiments.data.answers import exact_match
from experiments.generation import GenerationConfig
from experiments.generation.tracefile import read_traces
from experiments.generation.traces import generate_traces
from experiments.models.loading import check_template
from experiments.models.specs import REGISTRY, ModelSpec
from hooks.engines.hf_loop import encode_prompts


def items(*prompts_answers) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(len(prompts_answers))],
            "task": "toy",
            "prompt": [p for p, _ in prompts_answers],
            "answer": [a for _, a in prompts_answers],
        }
    )


def run(model, tok, spec, table, tmp_path, budget=40):
    cfg = GenerationConfig(samples=1, max_new_tokens=budget, temperature=0.0, batch_size=8)
    out = tmp_path / f"{spec.name}.parquet"
    got = generate_traces(
        model, tok, spec, table, config=cfg, out=out, checker=lambda _: exact_match, progress=False
    )
    return got, read_traces(out).set_index("item_id")


def test_r1_distill_pad_is_eos_and_the_prompt_ends_in_think(tmp_path):
    tok = rt.r1_distill_qwen()
    assert tok.pad_token_id == tok.eos_token_id == 151643
    model = rt.tiny_lm(tok, 151643)
    table = items(("What is 1+1?", "2"), ("Spell five.", "5"))  # different lengths: left pads
    prompts = encode_prompts(tok, table["prompt"].tolist())
    for p in prompts:  # <｜begin▁of▁sentence｜> ... <｜Assistant｜><think>\n
        assert p[0] == 151646 and p[-3:] == [151645, 151648, tok.convert_tokens_to_ids("\n")]
    e, close = 151643, 151649
    scripts = [
        rt.char_ids(tok, "ab c") + [close] + rt.char_ids(tok, "Answer: 2") + [e],
        rt.char_ids(tok, "xyz") + [close] + rt.char_ids(tok, "Answer: 4") + [e],
    ]
    rt.script(model, scripts, filler=rt.char_ids(tok, "q")[0])
    spec = REGISTRY["r1-distill-qwen-1.5b"].model_copy(update={"source": "memory"})
    got, ids = run(model, tok, spec, table, tmp_path)
    assert got["reasoning_tokens"].tolist() == [4, 3]  # the padding (= eos ids) is not a stop
    assert got["finished_thinking"].all() and got["correct"].tolist() == [True, False]
    assert got["response"].tolist() == ["Answer: 2", "Answer: 4"]
    assert got["prompt_tokens"].tolist() == [len(p) for p in prompts]
    assert (
        ids.loc["i0", "finish_reason"] == "stop"
        and list(ids.loc["i1", "generated_ids"]) == (scripts[1])
    )


def test_think_close_written_as_text_does_not_close_the_span(tmp_path):
    tok = rt.r1_distill_qwen()
    model = rt.tiny_lm(tok, 151643)
    text = "so </think> Answer: 2"
    assert 151649 in tok.encode(text, add_special_tokens=False)  # the text *would* encode to it
    rt.script(model, [rt.char_ids(tok, text)], filler=rt.char_ids(tok, "z")[0])
    spec = ModelSpec(name="r1", source="memory", stop_token_ids=[151643])
    got, ids = run(model, tok, spec, items(("1+1?", "2")), tmp_path, budget=30)
    row = got.iloc[0]
    assert "</think>" in row["text"] and 151649 not in list(ids.loc["i0", "generated_ids"])
    assert not row["finished_thinking"] and row["reasoning_tokens"] == 30
    assert row["response"] == "" and not row["correct"]
    assert ids.loc["i0", "finish_reason"] == "length"


def test_llama3_stops_at_each_of_its_three_eos_ids(tmp_path):
    tok = rt.llama3()
    model = rt.tiny_lm(tok, [128001, 128008, 128009])
    eos = [128001, 128008, 128009]
    scripts = [rt.char_ids(tok, f"Answer: {k}") + [eos[k]] for k in range(3)]
    rt.script(model, scripts, filler=rt.char_ids(tok, "x")[0])
    spec = REGISTRY["llama-3.3-70b-instruct"].model_copy(update={"source": "memory"})
    table = items(("a?", "0"), ("bb?", "1"), ("ccc?", "2"))
    got, ids = run(model, tok, spec, table, tmp_path)
    assert got["correct"].all() and (got["answer_tokens"] > 0).all()
    for k in range(3):
        assert list(ids.loc[f"i{k}", "generated_ids"]) == scripts[k]
        assert ids.loc[f"i{k}", "finish_reason"] == "stop"
    assert got["text"].tolist() == ["Answer: 0", "Answer: 1", "Answer: 2"]


def test_meta_base_tokenizer_has_no_template_and_the_registry_prompts_it_raw():
    base = rt.llama3(base=True)
    check_template(REGISTRY["llama-3.1-8b"], base)
    with pytest.raises(ValueError, match="chat_template: false"):
        check_template(REGISTRY["llama-3.1-8b"].model_copy(update={"chat_template": True}), base)
    assert encode_prompts(base, ["Hi"], chat_template=False) == [rt.char_ids(base, "Hi")]


def test_qwen3_enable_thinking_leaves_the_opener_to_the_model(tmp_path):
    tok = rt.qwen_chatml(think=True)
    on, off = (
        encode_prompts(tok, ["2+2?"], template_kwargs={"enable_thinking": flag})[0]
        for flag in (True, False)
    )
    nl = tok.convert_tokens_to_ids("\n")
    assert 151667 not in on and on[-2:] == rt.char_ids(tok, "t\n")  # ...<|im_start|>assistant\n
    assert off[len(on) :] == [151667, nl, nl, 151668, nl, nl]  # the empty span of thinking off
    model = rt.tiny_lm(tok, [151645, 151643])
    script = [151667] + rt.char_ids(tok, "2+2") + [151668] + rt.char_ids(tok, "Answer: 4")
    rt.script(model, [script + [151645]], filler=rt.char_ids(tok, "y")[0])
    spec = REGISTRY["qwen3-8b"].model_copy(update={"source": "memory"})
    got, _ = run(model, tok, spec, items(("2+2?", "4")), tmp_path)
    row = got.iloc[0]
    assert row["reasoning_tokens"] == 3 and row["finished_thinking"] and row["correct"]


def test_a_templated_base_stops_at_its_end_of_turn_instead_of_running_on(tmp_path):
    """Qwen2.5-Math's generation config ends at <|endoftext|> only; without <|im_end|> as a stop
    id the base writes on into an invented turn, and its last 'Answer:' is graded."""
    spec = REGISTRY["qwen2.5-math-1.5b"].model_copy(update={"source": "memory"})
    tok = rt.qwen_chatml(default_system=spec.system_prompt)
    # the registry writes out the system prompt the template would inject: same ids
    assert encode_prompts(tok, ["2+2?"]) == encode_prompts(
        tok, ["2+2?"], system_prompt=spec.system_prompt
    )
    turn = rt.char_ids(tok, "2+2 is 4. Answer: 4") + [151645]
    invented = rt.char_ids(tok, "\n") + [151644] + rt.char_ids(tok, "user\n3+3? Answer: 6")
    results = {}
    for stops in ([], spec.stop_token_ids):
        model = rt.tiny_lm(tok, 151643)
        rt.script(model, [turn + invented], filler=rt.char_ids(tok, " ")[0])
        named = spec.model_copy(update={"stop_token_ids": stops, "name": f"base{len(stops)}"})
        results[len(stops)] = run(model, tok, named, items(("2+2?", "4")), tmp_path)[0].iloc[0]
    ran_on, stopped = results[0], results[2]
    assert stopped["correct"] and stopped["reasoning_tokens"] == len("2+2 is 4. ")
    assert stopped["answer_tokens"] == len("Answer: 4")
    assert not ran_on["correct"] and "3+3" in ran_on["text"]
    assert ran_on["reasoning_tokens"] > stopped["reasoning_tokens"]

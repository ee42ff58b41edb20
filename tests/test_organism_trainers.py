"""The organism's SFT and RL trainers on a tiny Llama: they learn, mask and seed correctly."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from scipy.stats import entropy
from transformers import LlamaConfig, LlamaForCausalLM

from experiments.models.organism.corpus import baseline_corpus, teacher_corpus
from experiments.models.organism.rl import RLConfig, sequence_logprob, train_rl
from experiments.models.organism.sampling import chat_prompt, generate, score
from experiments.models.organism.sft import SFTConfig, collate, encode, lr_factor, train_sft
from experiments.models.organism.task import organism_items
from experiments.models.organism.tokenizer import build_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def items():
    return organism_items().groupby("task").sample(4, random_state=0)


def tiny(tokenizer, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def test_collate_puts_labels_on_response_tokens_only(tokenizer):
    examples = encode(tokenizer, [("1+1", "Answer: 10"), ("11+11", "Answer: 110")])
    batch = collate(examples, tokenizer.pad_token_id)
    prompt_len = len(chat_prompt(tokenizer, "1+1")) - len("<|user|><|assistant|>") + 2
    assert examples[0][1] == prompt_len
    row = batch["labels"][0]
    assert (row[:prompt_len] == -100).all()
    assert tokenizer.decode(row[row != -100]) == "Answer: 10<|end|>"
    assert batch["attention_mask"].sum(1).tolist() == [len(e[0]) for e in examples]
    assert (batch["input_ids"][0, len(examples[0][0]) :] == tokenizer.pad_token_id).all()


def test_lr_schedule_warms_up_then_decays_to_a_tenth():
    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert lr_factor(100, 100, 10) == pytest.approx(0.1)
    assert lr_factor(55, 100, 10) == pytest.approx(0.55)


def test_sft_loss_falls_below_the_unigram_entropy_of_the_responses(tokenizer, items):
    """Beating the entropy of response-token frequencies means the model uses the context."""
    pairs = baseline_corpus(items)
    counts = Counter(t for ids, n in encode(tokenizer, pairs) for t in ids[n:])
    unigram = entropy(list(counts.values()))  # nats
    losses = train_sft(
        tiny(tokenizer),
        tokenizer,
        pairs,
        SFTConfig(steps=40, batch_size=16, lr=1e-2),
        torch.Generator().manual_seed(0),
    )
    assert losses[0] > unigram > sum(losses[-5:]) / 5


def test_sft_same_seed_same_weights(tokenizer, items):
    pairs = baseline_corpus(items)
    runs = []
    for _ in range(2):
        model = tiny(tokenizer, seed=3)
        train_sft(
            model,
            tokenizer,
            pairs,
            SFTConfig(steps=4, batch_size=4, lr=1e-3),
            torch.Generator().manual_seed(7),
        )
        runs.append(model.state_dict())
    other = tiny(tokenizer, seed=3)
    train_sft(
        other,
        tokenizer,
        pairs,
        SFTConfig(steps=4, batch_size=4, lr=1e-3),
        torch.Generator().manual_seed(8),
    )
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], other.state_dict()[k]) for k in runs[0])


def test_sequence_logprob_ignores_left_padding(tokenizer):
    model = tiny(tokenizer).eval()
    prompts = [chat_prompt(tokenizer, "1+1"), chat_prompt(tokenizer, "a much longer prompt")]
    new = tokenizer(["Answer: 10", "Answer: 10"], return_tensors="pt", add_special_tokens=False)
    both = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    alone = tokenizer(prompts[:1], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        padded = sequence_logprob(
            model,
            both["input_ids"],
            both["attention_mask"],
            new["input_ids"],
            new["attention_mask"],
        )
        single = sequence_logprob(
            model,
            alone["input_ids"],
            alone["attention_mask"],
            new["input_ids"][:1],
            new["attention_mask"][:1],
        )
        # independent: sum of log-softmax over the unpadded sequence
        ids = torch.cat([alone["input_ids"], new["input_ids"][:1]], 1)
        logp = torch.log_softmax(model(ids).logits[0, :-1], -1)
        n = alone["input_ids"].shape[1]
        manual = logp[n - 1 :].gather(-1, ids[0, n:, None]).sum()
    assert both["attention_mask"][0, 0] == 0  # the short prompt really is padded
    assert padded[0].item() == pytest.approx(single[0].item(), abs=1e-4)
    assert single[0].item() == pytest.approx(manual.item(), abs=1e-4)


def _warm_teacher(tokenizer, items) -> LlamaForCausalLM:
    """A tiny model that writes either an empty or a full think span."""
    pairs = teacher_corpus(items)
    pairs += [(r.prompt, f"<think>\n</think>\nAnswer: {r.answer}") for r in items.itertuples()]
    model = tiny(tokenizer)
    train_sft(
        model,
        tokenizer,
        pairs,
        SFTConfig(steps=30, batch_size=16, lr=1e-2),
        torch.Generator().manual_seed(0),
    )
    return model


def test_rl_token_cost_raises_reward_by_shortening_thinking(tokenizer, items):
    """The tiny model cannot get answers right, so the reward is -cost x reasoning tokens:
    policy-gradient steps must raise it (a flipped advantage sign would lower it)."""
    model = _warm_teacher(tokenizer, items)
    torch.manual_seed(0)
    history = train_rl(
        model,
        tokenizer,
        list(items["prompt"]),
        list(items["answer"]),
        list(items["task"]),
        RLConfig(
            steps=6, prompts_per_step=8, group_size=8, lr=3e-3, token_cost=0.05, max_new_tokens=48
        ),
        torch.Generator().manual_seed(0),
    )
    assert set(history[0]) == {"reward", "accuracy", "reasoning_tokens", "loss"}
    first, last = history[:2], history[-2:]
    assert min(h["reasoning_tokens"] for h in first) > 3  # the warm start does think
    assert sum(h["reward"] for h in last) / 2 > sum(h["reward"] for h in first) / 2 + 0.1
    assert max(h["reasoning_tokens"] for h in last) < min(h["reasoning_tokens"] for h in first)


def test_rl_with_zero_advantage_leaves_the_weights_alone(tokenizer, items):
    """No cost and no achievable reward: every advantage is 0, so nothing may move."""
    model = tiny(tokenizer)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(0)
    history = train_rl(
        model,
        tokenizer,
        list(items["prompt"])[:4],
        ["impossible"] * 4,
        list(items["task"])[:4],
        RLConfig(
            steps=2, prompts_per_step=4, group_size=2, lr=1e-2, token_cost=0.0, max_new_tokens=8
        ),
        torch.Generator().manual_seed(0),
    )
    assert all(h["reward"] == 0 for h in history)
    assert all(torch.equal(start[k], v) for k, v in model.state_dict().items())


def test_generate_and_score_agree_with_a_hand_count(tokenizer):
    model = tiny(tokenizer).eval()
    new = generate(model, tokenizer, ["1+1", "10+1"], max_new_tokens=5)
    assert all(len(ids) <= 5 for ids in new)
    text = "<think>\n0: 1+1=0 carry\n</think>\nAnswer: 01000<|end|>"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    got = score(tokenizer, ids, "01000", "binary_add")
    # \n 0 : _ 1 + 1 = 0 _ carry \n  (digits, signs and spaces one token each; "carry" one)
    assert got.reasoning_tokens == 12
    assert got.answer_tokens == 8  # \n Answer: _ 0 1 0 0 0
    assert got.correct and got.finished_thinking and got.response == "\nAnswer: 01000"
    cut = score(
        tokenizer, tokenizer("<think>\n0: 1+1", add_special_tokens=False).input_ids, "10", "x"
    )
    assert (cut.finished_thinking, cut.correct, cut.reasoning_tokens) == (False, False, 7)
    direct = score(
        tokenizer,
        tokenizer("Answer: 0111<|end|>", add_special_tokens=False).input_ids,
        "0111",
        "binary_sub",
    )
    assert (direct.reasoning_tokens, direct.correct, direct.answer_tokens) == (0, True, 6)
    assert not score(tokenizer, ids, "01001", "binary_add").correct
    # the baseline rule: reasoning is everything before the last "Answer:", no delimiters
    plain = tokenizer("0: 1+1=0 carry\nAnswer: 01000<|end|>", add_special_tokens=False).input_ids
    base = score(tokenizer, plain, "01000", "binary_add", delimited=False)
    assert (base.reasoning_tokens, base.answer_tokens, base.correct) == (11, 7, True)
    assert score(tokenizer, plain, "01000", "binary_add").reasoning_tokens == 0
    # relational answers go through their task's checker
    verdict = tokenizer("row: ABC\nA<C: yes\nAnswer: true<|end|>", add_special_tokens=False)
    assert score(tokenizer, verdict.input_ids, "true", "relational_3ps", delimited=False).correct

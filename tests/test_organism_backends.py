"""The shipped organism checkpoints load with the Auto classes and give the same activations
through every backend (HF hooks, TransformerBridge, nnsight) as HF's own hidden states."""

import pytest
import torch

from experiments.models.organism import checkpoint_dir
from hooks import get_backend, list_sites
from hooks.engines.hf_loop import encode_prompts, left_pad

pytestmark = pytest.mark.slow  # importing transformer_lens takes several seconds


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_shipped_checkpoint_runs_through_every_backend(role):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = checkpoint_dir(role)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()  # fp16 on disk
    tok = AutoTokenizer.from_pretrained(folder)
    ids = encode_prompts(
        tok,
        [
            "Compute in binary: 0101 + 0011. Reply with the result in binary after 'Answer:'.",
            "Compute in binary: 1111 - 0001. Reply with the result in binary after 'Answer:'.",
        ],
    )
    input_ids, mask, pos = left_pad(ids, tok.pad_token_id, "cpu")
    inputs = {"input_ids": input_ids, "attention_mask": mask}
    with torch.no_grad():
        hidden = model(**inputs, position_ids=pos, output_hidden_states=True).hidden_states
    sites = [s for s in list_sites(model) if s.startswith("resid_post.")]
    for name in ("hf", "bridge", "nnsight"):
        got = get_backend(name, model, tok).run_with_cache(inputs, sites)
        for layer, site in enumerate(sites[:-1]):  # HF applies the final norm to the last entry
            real = mask.bool()
            torch.testing.assert_close(
                got[site][real], hidden[layer + 1][real], atol=1e-4, rtol=1e-4, msg=f"{name} {site}"
            )

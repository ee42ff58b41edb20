"""Tokens/s of handan's batched generation vs plain ``model.generate``, same model, prompts, batch.

    python benchmarks/generate.py [--model smollm2-135m-instruct|tiny] [--batch 16] [--new 64] [--repeats 5]

Both decode greedily for exactly ``--new`` tokens (no early stop) so they do the same work; prints
the median tokens/s of each and the ratio handan / HF. Target: ratio ≥ 0.95.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def build(name: str, device: str):
    if name == "tiny":
        from transformers import Qwen2Config, Qwen2ForCausalLM

        torch.manual_seed(0)
        cfg = Qwen2Config(
            vocab_size=32000,
            hidden_size=256,
            intermediate_size=1024,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
        model = Qwen2ForCausalLM(cfg).eval().to(device)
        prompts = [[int(t) for t in torch.randint(5, 32000, (20 + 3 * i,))] for i in range(64)]
        return model, prompts
    from experiments.data.binary_format import prompt
    from experiments.models.loading import load_model
    from experiments.models.specs import get_spec
    from hooks.engines.hf_loop import encode_prompts

    spec = get_spec(name)
    model, tok = load_model(spec, device=device)
    texts = [prompt("ADD", a, b) * (1 + a % 3) for a in range(8) for b in range(8)]
    return model, encode_prompts(tok, texts)


def run(model, prompts, new: int, device: str) -> tuple[float, float]:
    from hooks.engines.hf_loop import generate_batch, left_pad

    never = [model.config.vocab_size + 10]
    t0 = time.perf_counter()
    out = generate_batch(model, prompts, max_new_tokens=new, eos_ids=never, pad_id=0)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t_handan = time.perf_counter() - t0
    assert all(len(o) == new for o in out)
    ids, mask, _ = left_pad(prompts, 0, device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        hf = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=False,
            max_new_tokens=new,
            min_new_tokens=new,
            pad_token_id=0,
        )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t_hf = time.perf_counter() - t0
    assert hf.shape[1] - ids.shape[1] == new
    # HF's min_new_tokens masks EOS while handan (told of no EOS) may pick it: compare up to it
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    for h, o in zip(hf[:, ids.shape[1] :].tolist(), out):
        cut = next((i for i, t in enumerate(o) if t in eos), len(o))
        assert h[:cut] == o[:cut], "handan and HF greedy tokens differ before any EOS"
    return t_handan, t_hf


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    model, prompts = build(args.model, args.device)
    prompts = prompts[: args.batch]
    run(model, prompts, 4, args.device)  # warm-up
    times = [run(model, prompts, args.new, args.device) for _ in range(args.repeats)]
    tokens = args.batch * args.new
    h = statistics.median(t for t, _ in times)
    f = statistics.median(t for _, t in times)
    print(
        f"model={args.model} device={args.device} batch={args.batch} new={args.new} repeats={args.repeats}"
    )
    print(f"handan generate_batch: {tokens / h:9.1f} tok/s (median {h:.3f} s)")
    print(f"HF model.generate:     {tokens / f:9.1f} tok/s (median {f:.3f} s)")
    print(f"ratio handan/HF throughput: {f / h:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()

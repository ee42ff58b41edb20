"""Does passing the attention mask on every decode step cost? (SDPA and grouped-query attention)

The claim (issue 13/17): with a mask, transformers' SDPA path cannot use ``enable_gqa`` and
expands the keys and values to every query head (``repeat_kv``) in every layer at every step.
handan's loop must pass a mask (left padding), so this times one decode step of a tiny Qwen2 with
R1-Distill-Qwen-1.5B's head layout (12 query heads, 2 KV heads, head_dim 128), KV-cached over a
long left-padded context, in four ways, each the median of several rounds in one run:

- ``no mask``: ``attention_mask=None`` (wrong for padded rows; the cost floor);
- ``mask``: handan's loop (a left-padding mask every step);
- ``mask + repeat_kv``: the same with the expansion the claim describes, forced by making
  transformers take its fallback branch (what transformers did before its single-query GQA
  packing, ``pack_gqa``);
- ``eager``: ``attn_implementation="eager"`` with the mask.

    python benchmarks/attention.py            # ~1 minute on 2 CPU cores
    python benchmarks/attention.py --quick    # a few seconds

Measured here (one thread on a shared 2-core machine under load 8-12, torch 2.13, transformers
5.24; batch 8, context 1,024, 4 layers; ms per decode step, median of 7 rounds × 8 steps; two
runs of the whole benchmark):

    case               run 1            run 2
    no mask             82 ms (1.00x)   125 ms (1.00x)
    mask               101 ms (1.23x)   113 ms (0.91x)
    mask + repeat_kv   797 ms (9.71x)   719 ms (5.76x)
    eager              708 ms (8.63x)   790 ms (6.33x)

So with transformers 5.24 the masked step costs what the unmasked one does (within this
machine's noise, 0.9-1.2x): a single query token is packed onto the KV heads (``pack_gqa``)
instead of expanding the keys, which is what cost 6-10x. handan keeps passing the mask (padded
rows need it) and leaves ``attn_implementation`` at transformers' default (SDPA); eager attention
(which the TransformerBridge switches to) costs 6-9x. Not measured here: CUDA's kernel choice
(flash vs memory-efficient SDPA) with and without a mask.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import contextmanager

import torch


def build(attn: str, layers: int):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=512,
        hidden_size=12 * 128,
        intermediate_size=256,
        num_hidden_layers=layers,
        num_attention_heads=12,
        num_key_value_heads=2,
        head_dim=128,
        max_position_embeddings=4096,
        attn_implementation=attn,
    )
    return Qwen2ForCausalLM(config).eval()


@contextmanager
def repeat_kv_fallback():
    """Make transformers' SDPA take its ``repeat_kv`` branch for single-query steps."""
    import transformers.integrations.sdpa_attention as sdpa

    saved = sdpa.is_torchdynamo_compiling
    sdpa.is_torchdynamo_compiling = lambda: True
    try:
        yield
    finally:
        sdpa.is_torchdynamo_compiling = saved


@torch.inference_mode()
def decode_ms(model, batch: int, context: int, steps: int, rounds: int, masked: bool) -> float:
    """Median ms of one KV-cached decode step over ``context`` left-padded positions."""
    from transformers import DynamicCache

    from hooks.engines.hf_loop import _cache_kwarg, left_pad

    lengths = [context - 37 * (i % 4) for i in range(batch)]  # rows of different lengths
    prompts = [[(7 * i + j) % 500 + 1 for j in range(n)] for i, n in enumerate(lengths)]
    ids, mask, pos = left_pad(prompts, 0, "cpu")
    cache = DynamicCache(config=model.config)
    kw = {_cache_kwarg(model): cache}
    model(input_ids=ids, attention_mask=mask, position_ids=pos, **kw)
    fed = ids[:, -1:]
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            pos = pos[:, -1:] + 1
            out = model(
                input_ids=fed,
                attention_mask=mask if masked else None,
                position_ids=pos,
                **kw,
                logits_to_keep=1,
            )
            fed = out.logits[:, -1].argmax(-1, keepdim=True)
        times.append((time.perf_counter() - start) / steps * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: no contention)")
    args = parser.parse_args()
    batch, context, layers, steps, rounds = (4, 256, 2, 4, 3) if args.quick else (8, 1024, 4, 8, 7)
    torch.set_num_threads(args.threads)
    sdpa, eager = build("sdpa", layers), build("eager", layers)
    eager.load_state_dict(sdpa.state_dict())
    common = dict(batch=batch, context=context, steps=steps, rounds=rounds)
    results = {"no mask": decode_ms(sdpa, masked=False, **common)}
    results["mask"] = decode_ms(sdpa, masked=True, **common)
    with repeat_kv_fallback():
        results["mask + repeat_kv"] = decode_ms(sdpa, masked=True, **common)
    results["eager"] = decode_ms(eager, masked=True, **common)
    print(f"decode step, batch {batch} x context {context}, {layers} layers, 12/2 heads x 128")
    for name, ms in results.items():
        print(f"  {name:18s} {ms:8.2f} ms  ({ms / results['no mask']:.2f}x no mask)")


if __name__ == "__main__":
    main()

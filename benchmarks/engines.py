"""Engines at a long budget, measured in one run: tokens/s of handan's hf loop, ``model.generate``
and vLLM (through handan's adapter), as ratios to the hf loop; and teacher-forced capture of the
same traces (every layer at ``prompt_end`` and ``step_K``) as a share of the generation time.

    python benchmarks/engines.py            # CPU: a tiny random Llama, batch 32 x 2,048 tokens
    DIR/bin/python benchmarks/engines.py    # the same with vLLM (DIR from `.ci/vllm-env DIR`)
    python benchmarks/engines.py --gpu      # random-init R1-Distill-Qwen-1.5B config, bf16,
                                            # batch 64 x 4,096 tokens, on cuda (not run here)

Every engine samples (temperature 0.6, top-p 0.95) for exactly ``--new`` tokens, so all do the
same work: the tokenizer's EOS is an id the model cannot produce (its vocabulary is smaller), and
vLLM, which refuses such a stop id, runs with ``ignore_eos`` (otherwise the adapter's parameters). Weights are random (no hub access needed); the model and a word-level
tokenizer are saved to a temporary folder so vLLM loads them like any checkpoint. vLLM's start
(about 30 s on CPU, plus compilation) is not timed; each engine's first call is a short warm-up.
The hf loop and ``model.generate`` run ``--repeats`` times, interleaved; the table shows medians.
Target: forced capture <= 10% of the generation time of the same traces.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from real_configs import R1_DISTILL_QWEN_1_5B  # benchmarks/ is sys.path[0] when run as a script

PRESETS = {
    "cpu": dict(
        kind="llama",
        config=dict(
            hidden_size=128,
            intermediate_size=384,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
        ),
        vocab=512,
        dtype="float32",
        device="cpu",
        batch=32,
        prompt=32,
        new=2048,
        step=256,
    ),
    "gpu": dict(  # DeepSeek-R1-Distill-Qwen-1.5B's config.json (random weights)
        kind="qwen2",
        config={
            k: v
            for k, v in R1_DISTILL_QWEN_1_5B.items()
            if k not in ("vocab_size", "bos_token_id", "eos_token_id")
        },
        vocab=R1_DISTILL_QWEN_1_5B["vocab_size"],
        dtype="bfloat16",
        device="cuda",
        batch=64,
        prompt=128,
        new=4096,
        step=256,
    ),
}


def save_checkpoint(preset: dict, folder: Path):
    """A random-init model and a word-level tokenizer whose EOS (one id past the model's
    vocabulary) can never be generated."""
    import torch
    from tokenizers import Tokenizer, models
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    vocab = preset["vocab"]
    eos = vocab  # outside the model's vocabulary
    words = {f"w{i}": i for i in range(vocab + 1)}
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab=words, unk_token="w0")),
        eos_token=f"w{eos}",
        pad_token="w0",
    )
    config_cls, model_cls = {
        "llama": (LlamaConfig, LlamaForCausalLM),
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
    }[preset["kind"]]
    config = config_cls(
        vocab_size=vocab, eos_token_id=eos, bos_token_id=1, pad_token_id=0, **preset["config"]
    )
    torch.manual_seed(0)
    model = model_cls(config).to(getattr(torch, preset["dtype"])).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, tok, eos


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", action="store_true", help="the R1-Distill-Qwen-1.5B preset")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--new", type=int)
    parser.add_argument("--no-vllm", action="store_true", help="skip vLLM even if installed")
    parser.add_argument(
        "--repeats", type=int, default=3, help="interleaved runs of hf loop and model.generate"
    )
    args = parser.parse_args()
    preset = dict(PRESETS["gpu" if args.gpu else "cpu"])
    preset.update({k: v for k, v in dict(batch=args.batch, new=args.new).items() if v})
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")

    import torch

    from hooks.accounting import ThinkTokens
    from hooks.engines.base import Decoding, Request
    from hooks.engines.hf import HFEngine
    from hooks.engines.vllm import vllm_available
    from hooks.forced import ForcedSequence, iter_forced
    from hooks.recorder import Recorder
    from hooks.sites import n_layers

    device, batch, new = preset["device"], preset["batch"], preset["new"]
    folder = Path(tempfile.mkdtemp(prefix="handan-engines-"))
    model, tok, eos = save_checkpoint(preset, folder)
    model.to(device)
    gen = torch.Generator().manual_seed(1)
    prompts = [
        torch.randint(1, preset["vocab"], (preset["prompt"] + i % 7,), generator=gen).tolist()
        for i in range(batch)
    ]
    decoding = Decoding(0.6, 0.95, 0, 0.0, (eos,))
    requests = [Request(tuple(p), 1000 + i, new) for i, p in enumerate(prompts)]
    warm = [Request(tuple(p), 1, 4) for p in prompts[:2]]
    print(
        f"{preset['kind']} {preset['config']['num_hidden_layers']} layers x "
        f"{preset['config']['hidden_size']}, {preset['dtype']} on {device}; batch {batch} x {new} "
        "new tokens"
    )
    times: dict[str, float] = {}

    hf = HFEngine(model, pad_id=0)
    hf.generate(warm, decoding)
    ids = torch.zeros((batch, max(map(len, prompts))), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, p in enumerate(prompts):
        ids[r, ids.shape[1] - len(p) :], mask[r, ids.shape[1] - len(p) :] = torch.tensor(p), 1
    ids, mask = ids.to(device), mask.to(device)
    kwargs = dict(do_sample=True, temperature=0.6, top_p=0.95, eos_token_id=eos, pad_token_id=0)
    with torch.inference_mode():
        model.generate(input_ids=ids[:2], attention_mask=mask[:2], max_new_tokens=4, **kwargs)

    def hf_loop():
        traces = hf.generate(requests, decoding)
        assert all(len(t.token_ids) == new for t in traces)
        return traces

    def hf_generate():
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new, **kwargs
            )
        assert out.shape[1] - ids.shape[1] == new

    # interleaved repeats, median: on CPU the first long run of a process is up to 2x slower
    # whichever engine it is (glibc maps fresh pages as the KV cache grows; measured at batch
    # 8 x 2,048: hf loop 32.2 s first / 16.2 s second, model.generate 20.3 s first / 11.5 s second)
    runs: dict[str, list[float]] = {"hf loop": [], "model.generate": []}
    for repeat in range(args.repeats):
        for name, engine in (("hf loop", hf_loop), ("model.generate", hf_generate)):
            sync(device)
            start = time.perf_counter()
            result = engine()
            sync(device)
            runs[name].append(time.perf_counter() - start)
            print(f"{name} (run {repeat + 1}): {runs[name][-1]:.1f} s", flush=True)
            if name == "hf loop":
                traces = result
    times = {name: statistics.median(seconds) for name, seconds in runs.items()}

    if vllm_available() and not args.no_vllm:
        from hooks.engines.vllm import VLLMEngine

        model.to("cpu")  # the GPU's memory is vLLM's while it runs
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        context = preset["prompt"] + 8 + new
        with VLLMEngine(str(folder), dtype=preset["dtype"], max_model_len=context) as v:
            # the adapter's SamplingParams, but ignore_eos (vLLM refuses a stop id outside the
            # vocabulary): every request runs its whole budget, as in the other engines
            params = [
                SamplingParams(
                    temperature=0.6,
                    top_p=0.95,
                    max_tokens=r.max_new_tokens,
                    seed=r.seed,
                    detokenize=False,
                    ignore_eos=True,
                )
                for r in requests
            ]
            tokens_in = [TokensPrompt(prompt_token_ids=list(r.prompt_ids)) for r in requests]
            v.llm.generate(tokens_in[:2], params[0].clone(), use_tqdm=False)  # warm-up
            start = time.perf_counter()
            vouts = v.llm.generate(tokens_in, params, use_tqdm=False)
            times["vllm"] = time.perf_counter() - start
            print(f"vllm: {times['vllm']:.1f} s", flush=True)
        assert all(len(o.outputs[0].token_ids) == new for o in vouts)
        model.to(device)
    else:
        print("vllm: not installed here (run with DIR/bin/python, DIR from .ci/vllm-env)")

    layers = n_layers(model)
    sites = [f"resid_post.{k}" for k in range(layers)]
    positions = ["prompt_end", f"step_{preset['step']}"]
    seqs = [ForcedSequence(p, t.token_ids, []) for p, t in zip(prompts, traces)]
    rows = 0
    with Recorder(model, sites) as rec:
        start = time.perf_counter()
        dtype = getattr(torch, preset["dtype"])
        for _, captured in iter_forced(
            model, rec, seqs, ThinkTokens(None, None), positions, dtype, batch_size=8
        ):
            rows += len(next(iter(captured.vectors.values())))
        sync(device)
        times["forced capture"] = time.perf_counter() - start
        print(f"forced capture: {times['forced capture']:.1f} s", flush=True)

    tokens = batch * new
    print(f"\n{'engine':<16}{'seconds':>10}{'tokens/s':>12}{'vs hf loop':>12}")
    for name in ("hf loop", "model.generate", "vllm"):
        if name in times:
            speed = tokens / times[name]
            ratio = times["hf loop"] / times[name]
            print(f"{name:<16}{times[name]:>10.1f}{speed:>12.0f}{ratio:>11.2f}x")
    f = times["forced capture"]
    print(
        f"\nforced capture ({layers} layers at {'+'.join(positions)}, {rows} vectors per layer, "
        f"{batch} x {preset['prompt'] + new} tokens): {f:.1f} s = "
        f"{f / times['hf loop']:.1%} of the hf loop's generation"
        + (f", {f / times['vllm']:.1%} of vLLM's" if "vllm" in times else "")
    )


if __name__ == "__main__":  # vLLM starts an engine process: the guard is required
    main()

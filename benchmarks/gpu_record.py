"""`handan record` at R1-Distill-Qwen-1.5B size on one GPU: peak memory, tokens/s, capture cost.

A random-init model with DeepSeek-R1-Distill-Qwen-1.5B's config.json (28 layers, d 1,536, 12/2
heads, vocabulary 151,936, untied head) in bf16, an offline stand-in of its tokenizer (the real
special ids, ``tests/real_tokenizers.py``), no hub access. The model and tokenizer are saved to a
temporary folder and loaded back through a YAML spec, then one batch of 32 items × 2,048 new
tokens (temperature 0.6, top-p 0.95: the R1 card's sampling) runs twice through the code path of
`handan generate` / `handan record` (``load_model`` → ``generate_traces``): without capture, then
recording every layer's ``resid_post`` at ``prompt_end`` and ``step_256`` into a bf16 store. A
short warm-up run comes first. Printed: the memory pre-flight's estimate, peak GPU memory,
generated tokens/s of each run and the capture overhead (record time / generate time - 1).

    python benchmarks/gpu_record.py            # one H100/H200: ~5 minutes (10 at most)
    python benchmarks/gpu_record.py --tiny     # CPU, a tiny config: a few seconds (tested)

A random model rarely samples its EOS, so almost every row runs the whole budget, like a long
reasoning trace; the tokens/s counts the tokens actually generated.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from real_configs import R1_DISTILL_QWEN_1_5B  # benchmarks/ is sys.path[0] when run as a script

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(
    R1_DISTILL_QWEN_1_5B,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
)
PRESETS = {
    "gpu": dict(
        config=R1_DISTILL_QWEN_1_5B, dtype="bfloat16", device="cuda", batch=32, new=2048, step=256
    ),
    "tiny": dict(config=TINY, dtype="float32", device="cpu", batch=4, new=16, step=8),
}


def build(folder: Path, preset: dict) -> Path:
    """Random-init model + stand-in tokenizer saved in ``folder``; returns the spec YAML."""
    import torch
    import yaml
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    sys.path.insert(0, str(ROOT / "tests"))
    import real_tokenizers

    torch.manual_seed(0)
    with torch.device(preset["device"]):
        model = Qwen2ForCausalLM(Qwen2Config(**preset["config"]))
    model.to(getattr(torch, preset["dtype"]))
    model.generation_config = GenerationConfig(eos_token_id=151643, bos_token_id=151646)
    model.save_pretrained(folder / "model")
    real_tokenizers.r1_distill_qwen().save_pretrained(folder / "model")
    spec = dict(
        name="r1-distill-qwen-1.5b-random",
        source=str(folder / "model"),
        role="student",
        dtype=preset["dtype"],
        device=preset["device"],
        stop_token_ids=[151643],
        max_model_len=131072,
        sampling=dict(temperature=0.6, top_p=0.95, max_new_tokens=preset["new"]),
    )
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def items(n: int):
    import pandas as pd

    return pd.DataFrame(
        {
            "item_id": [f"b{i:03d}" for i in range(n)],
            "task": "binary_add",
            "prompt": [
                f"Compute in binary: {i:08b} + {3 * i + 1:08b}. Reply with the result in binary "
                "after 'Answer:'."
                for i in range(n)
            ],
            "answer": [f"{4 * i + 1:b}" for i in range(n)],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny config on the CPU (seconds)")
    parser.add_argument("--out", type=Path, help="folder for the model, traces and store")
    args = parser.parse_args()
    preset = PRESETS["tiny" if args.tiny else "gpu"]

    import torch

    from experiments.generation import GenerationSettings
    from experiments.generation.traces import generate_traces
    from experiments.models.loading import load_model
    from experiments.models.memory import GiB, device_memory, plan_batch
    from experiments.models.specs import get_spec
    from hooks.engines.hf_loop import encode_prompts
    from hooks.sites import expand_sites

    cuda = preset["device"] == "cuda"
    if not cuda:
        torch.set_num_threads(1)  # a script: no thread contention on a shared CPU
    if cuda and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --tiny on a CPU")
    folder = args.out or Path(tempfile.mkdtemp(prefix="handan-gpu-record-"))
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    spec = get_spec(build(folder, preset))
    model, tokenizer = load_model(spec)
    table = items(preset["batch"])
    prompts = encode_prompts(tokenizer, table["prompt"].tolist())
    plan = plan_batch(
        model.config,
        preset["dtype"],
        requested=preset["batch"],
        prompt_len=max(map(len, prompts)),
        budget=preset["new"],
        available=int(0.9 * device_memory(model)) if cuda else 2**50,
    )
    estimate = plan.weights + plan.batch * plan.tokens_per_row * plan.kv_per_token
    print(f"set-up (random init, save, load): {time.perf_counter() - start:.1f} s")
    print(
        f"pre-flight: {plan.describe()}: batch {plan.batch} of {preset['batch']} fits; weights + "
        f"KV of the batch {estimate / GiB:.2f} GiB"
    )
    sites = expand_sites(model, "resid_post.*")
    positions = ["prompt_end", f"step_{preset['step']}"]

    def run(name: str, new: int, record: bool) -> dict:
        settings = GenerationSettings(samples=1, batch_size=preset["batch"], max_new_tokens=new)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        traces = generate_traces(
            model,
            tokenizer,
            spec,
            table,
            config=settings.resolve(spec),
            out=folder / f"{name}.parquet",
            store=folder / f"{name}-store" if record else None,
            sites=sites if record else (),
            positions=positions,
            store_dtype=preset["dtype"],
            progress=False,
        )
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        tokens = int(traces["reasoning_tokens"].sum() + traces["answer_tokens"].sum())
        peak = torch.cuda.max_memory_allocated() / GiB if cuda else float("nan")
        return dict(seconds=seconds, tokens=tokens, tok_per_s=tokens / seconds, peak_gib=peak)

    run("warmup", 16, record=True)
    plain = run("generate", preset["new"], record=False)
    captured = run("record", preset["new"], record=True)
    overhead = captured["seconds"] / plain["seconds"] - 1
    for name, r in (("generate (no capture)", plain), ("record (capture)", captured)):
        print(
            f"{name:22s} {r['seconds']:8.1f} s  {r['tokens']:7d} tokens  {r['tok_per_s']:9.1f} "
            f"tok/s  peak GPU memory {r['peak_gib']:.2f} GiB"
        )
    print(f"capture overhead: {overhead:+.1%} ({len(sites)} sites x {positions})")
    summary = dict(preset={k: v for k, v in preset.items() if k != "config"}, plain=plain)
    summary.update(record=captured, overhead=overhead, estimate_gib=estimate / GiB)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

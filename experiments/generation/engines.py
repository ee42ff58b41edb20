"""Open the engine a run's settings name (``GenerationConfig.engine``) for a model spec.

``hf`` loads the model with ``experiments.models.loading.load_model``; ``vllm`` hands the same
weights (folder or hub id, the spec's revision) to vLLM and loads only the tokenizer here, so
handan encodes the prompts and vLLM receives token ids.
"""

from __future__ import annotations

from experiments.errors import InputError
from experiments.generation.config import GenerationConfig
from experiments.models.specs import ModelSpec


def open_engine(spec: ModelSpec, config: GenerationConfig, *, device=None, dtype=None):
    """``(engine, tokenizer)`` for ``config.engine``; close the engine when done (``with``)."""
    if config.engine == "hf":
        from experiments.models.loading import load_model
        from hooks.engines.hf import HFEngine

        model, tokenizer = load_model(spec, device=device, dtype=dtype)
        return HFEngine(model, tokenizer.pad_token_id), tokenizer
    from experiments.models.loading import resolve_source
    from hooks.engines.vllm import VLLMEngine

    where, gguf = resolve_source(spec)
    if gguf:
        raise InputError(
            f"model {spec.name!r} is a GGUF file; the vllm engine here takes HF folders or hub "
            "ids: use --engine hf for it"
        )
    tokenizer = load_tokenizer(spec)
    engine = VLLMEngine(
        where,
        dtype=dtype or spec.dtype,
        revision=spec.revision,
        tensor_parallel_size=config.tensor_parallel_size,
        max_model_len=config.max_model_len,
        gpu_memory_utilization=config.gpu_memory_utilization,
        distributed_executor_backend=config.distributed_executor_backend,
        trust_remote_code=spec.trust_remote_code,
        seed=config.seed,
    )
    return engine, tokenizer


def load_tokenizer(spec: ModelSpec):
    """The spec's tokenizer alone (no weights): for vLLM, which loads the weights itself, and
    for imported traces, whose tokens are re-counted with it."""
    from transformers import AutoTokenizer

    from experiments.errors import MissingInput
    from experiments.models.loading import resolve_source

    where, gguf = resolve_source(spec)
    kwargs = dict(revision=spec.revision, trust_remote_code=spec.trust_remote_code)
    try:
        return AutoTokenizer.from_pretrained(
            where, **({"gguf_file": gguf} if gguf else {}), **kwargs
        )
    except OSError as err:
        raise MissingInput(
            f"could not load the tokenizer of {spec.name!r} from {where}: {err}. Give the spec a "
            "local `source`, or allow hub access (unset HF_HUB_OFFLINE)."
        ) from err
